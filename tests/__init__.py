# Imported by pytest before conftest (which imports torch): `import omnibind` first picks sleeping
# OpenMP waits, as for users, before torch loads the runtime it shares with llama.cpp (spinning waits
# made a llama.cpp test take 164 s instead of 16 s on a shared CPU).
import omnibind  # noqa: F401
