"""Instruction phrasings: captions and labels become many different questions (X-InstructBLIP used
32 caption and 21 question templates; we ship more of each, worded per modality).

``{noun}`` is a modality's noun ("picture", "sound clip"...), ``{verb}`` how it is perceived
("see", "hear"...). Randomness comes from the caller's ``random.Random`` so data builds are
reproducible.
"""

from __future__ import annotations

import random
import re

NOUNS: dict[str, tuple[str, ...]] = {
    "image": ("image", "picture", "photo", "drawing"),
    "audio": ("sound", "audio clip", "recording", "sound clip"),
    "video": ("video", "clip", "video clip"),
    "depth": ("depth map", "depth image", "depth scan"),
    "thermal": ("thermal image", "heat image", "infrared picture"),
    "imu": ("motion recording", "IMU recording", "movement data", "sensor recording"),
    "points": ("point cloud", "3D shape", "3D scan", "3D model"),
}
VERBS: dict[str, tuple[str, ...]] = {
    "image": ("see", "notice"),
    "audio": ("hear", "notice"),
    "video": ("see", "notice"),
    "depth": ("see", "make out"),
    "thermal": ("see", "make out"),
    "imu": ("detect", "recognise"),
    "points": ("see", "make out"),
}

CAPTION_TEMPLATES: tuple[str, ...] = (
    "Describe the {noun}.",
    "Describe the {noun} briefly.",
    "Write a short caption for the {noun}.",
    "A short caption for the {noun}:",
    "Give a brief description of this {noun}.",
    "What is in the {noun}?",
    "What does this {noun} show?",
    "What do you {verb} in this {noun}?",
    "Summarise the {noun} in one sentence.",
    "Caption this {noun}.",
    "Tell me what the {noun} contains.",
    "Briefly, what is this {noun} about?",
    "Write one sentence about the {noun}.",
    "Provide a caption.",
    "In a few words, describe what you {verb}.",
    "What can you {verb} here?",
    "Explain what this {noun} is of.",
    "Generate a caption for the {noun}.",
    "Describe the content of the {noun}.",
    "What is the main subject of this {noun}?",
    "Give this {noun} a title-like description.",
    "How would you describe this {noun} to a friend?",
    "Please describe the {noun} concisely.",
    "Can you tell me what this {noun} is?",
    "Say what the {noun} depicts.",
    "Write a caption that fits this {noun}.",
    "Use one sentence to describe the {noun}.",
    "What is going on in the {noun}?",
    "Describe what you {verb}.",
    "Label this {noun} with a short description.",
    "Identify the content of the {noun}.",
    "What is this?",
    "Tell me about this {noun}.",
    "Give a one-line summary of the {noun}.",
    "What would be a good caption here?",
    "Look at the input and describe it.",
)

QA_TEMPLATES: tuple[str, ...] = (
    "{question}",
    "Question: {question}",
    "Question: {question} Answer:",
    "{question} Answer briefly.",
    "{question} Give a short answer.",
    "Answer the question about the {noun}: {question}",
    "Given the {noun}, answer: {question}",
    "Based on the {noun}, {question_lc}",
    "Looking at the {noun}, {question_lc}",
    "Use the {noun} to answer the question. {question}",
    "Here is a question about the {noun}. {question}",
    "{question} Answer in a few words.",
    "Please answer: {question}",
    "Q: {question} A:",
    "With the {noun} in mind, {question_lc}",
    "I have a question about this {noun}: {question}",
    "From what you {verb}, {question_lc}",
    "{question} Reply with a short phrase.",
    "Read the {noun} carefully. {question}",
    "Answer this question: {question}",
    "The {noun} is provided. {question}",
    "{question} Use the {noun} to decide.",
    "Tell me: {question_lc}",
    "Quick question about the {noun}: {question}",
)

OBJECT_QUESTIONS: tuple[str, ...] = (
    "What is this?",
    "What is shown in the {noun}?",
    "What object is this?",
    "What is in the {noun}?",
    "Name the main thing in this {noun}.",
    "What do you {verb}?",
    "Which object does this {noun} show?",
    "What is it?",
)
SOUND_QUESTIONS: tuple[str, ...] = (
    "What makes this sound?",
    "What is making this sound?",
    "What do you hear?",
    "Which animal or object produces this sound?",
    "What is the source of this sound?",
    "What could make a sound like this?",
)
ACTIVITY_QUESTIONS: tuple[str, ...] = (
    "What is the person doing?",
    "Which activity is this?",
    "What activity does this {noun} come from?",
    "What was the wearer doing?",
    "Name the activity.",
    "What movement is recorded here?",
)
YES_NO_QUESTIONS: tuple[str, ...] = (
    "Is this {a_label}?",
    "Does this {noun} show {a_label}?",
    "Is there {a_label} in the {noun}?",
    "Could this be {a_label}?",
    "Is {a_label} what you {verb}?",
)
CHOICE_QUESTIONS: tuple[str, ...] = (
    "Is this {a_first} or {a_second}?",
    "Which is it: {a_first} or {a_second}?",
    "Does the {noun} show {a_first} or {a_second}?",
)


def article(phrase: str) -> str:
    """'a badger', 'an apple', or the phrase unchanged when it already has a determiner or is plural-ish."""
    p = phrase.strip()
    low = p.lower()
    if re.match(r"^(a|an|the|some|two|three|four|many|several)\s", low):
        return p
    return ("an " if low[:1] in "aeiou" else "a ") + p


def sentence(text: str) -> str:
    """Capitalise and end with a full stop (captions and answers are sentences)."""
    t = text.strip()
    if not t:
        return t
    t = t[0].upper() + t[1:]
    return t if t[-1] in ".!?" else t + "."


def _fill(template: str, modality: str, rng: random.Random, **kw: str) -> str:
    noun = rng.choice(NOUNS.get(modality, ("input",)))
    verb = rng.choice(VERBS.get(modality, ("notice",)))
    question = kw.pop("question", "")
    lc = question[:1].lower() + question[1:] if question else ""
    return template.format(noun=noun, verb=verb, question=question, question_lc=lc, **kw)


def caption_prompt(modality: str, rng: random.Random) -> str:
    """A random caption instruction for one modality."""
    return _fill(rng.choice(CAPTION_TEMPLATES), modality, rng)


def qa_prompt(modality: str, question: str, rng: random.Random) -> str:
    """A question wrapped in a random QA template."""
    return _fill(rng.choice(QA_TEMPLATES), modality, rng, question=question)


def object_prompt(modality: str, rng: random.Random) -> str:
    """'What is this?' and its variants (sounds and motions get their own wording)."""
    pool = {"audio": SOUND_QUESTIONS, "imu": ACTIVITY_QUESTIONS}.get(modality, OBJECT_QUESTIONS)
    return _fill(rng.choice(pool), modality, rng)


def yes_no_prompt(modality: str, label: str, rng: random.Random) -> str:
    return _fill(rng.choice(YES_NO_QUESTIONS), modality, rng, a_label=article(label))


def choice_prompt(modality: str, first: str, second: str, rng: random.Random) -> str:
    return _fill(rng.choice(CHOICE_QUESTIONS), modality, rng, a_first=article(first), a_second=article(second))


def label_qa(modality: str, label: str, others: list[str], rng: random.Random, *, n: int = 2) -> list[tuple[str, str]]:
    """Question–answer pairs about an item's label: open question, yes/no (balanced), two-way choice.

    ``others`` are the other labels of the source (negatives for yes/no and choices).
    """
    others = [o for o in others if o != label]
    makers = [
        lambda: (object_prompt(modality, rng), sentence(article(label))),
    ]
    if others:

        def yes_no() -> tuple[str, str]:
            if rng.random() < 0.5:
                return yes_no_prompt(modality, label, rng), f"Yes, it is {article(label)}."
            neg = rng.choice(others)
            return yes_no_prompt(modality, neg, rng), f"No, it is {article(label)}."

        def choice() -> tuple[str, str]:
            neg = rng.choice(others)
            a, b = (label, neg) if rng.random() < 0.5 else (neg, label)
            return choice_prompt(modality, a, b, rng), sentence(article(label))

        makers += [yes_no, choice]
    later = makers[1:] or makers  # after the open question: yes/no or a choice when negatives exist
    return [makers[0]() if i == 0 else rng.choice(later)() for i in range(n)]


# --------------------------------------------------------------------------- text-only chat


def _arith(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    op = rng.choice(["+", "-", "*"])
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    word = {"+": "plus", "-": "minus", "*": "times"}[op]
    q = rng.choice([f"What is {a} {op} {b}?", f"Compute {a} {word} {b}.", f"How much is {a} {word} {b}?"])
    return q, f"{a} {op} {b} = {value}."


def _compare(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(range(1, 1000), 2)
    q = rng.choice([f"Which is larger, {a} or {b}?", f"Which number is bigger: {a} or {b}?"])
    return q, f"{max(a, b)} is larger than {min(a, b)}."


def _sort(rng: random.Random) -> tuple[str, str]:
    nums = rng.sample(range(1, 100), rng.randint(3, 6))
    q = rng.choice(["Sort these numbers from smallest to largest: ", "Put these numbers in increasing order: "])
    return q + ", ".join(map(str, nums)) + ".", ", ".join(map(str, sorted(nums))) + "."


WORDS = (
    "apple garden window river pencil morning yellow bicycle kitten orange music planet doctor "
    "forest summer bottle rabbit silver candle market winter button guitar island"
).split()


def _spell(rng: random.Random) -> tuple[str, str]:
    w = rng.choice(WORDS)
    kind = rng.randrange(4)
    if kind == 0:
        return f"How many letters are in the word '{w}'?", f"The word '{w}' has {len(w)} letters."
    if kind == 1:
        return f"Spell the word '{w}' backwards.", f"{w[::-1]}"
    if kind == 2:
        return f"Write the word '{w}' in capital letters.", w.upper()
    return f"What is the first letter of '{w}'?", f"The first letter of '{w}' is '{w[0]}'."


def _sequence(rng: random.Random) -> tuple[str, str]:
    start, step = rng.randint(1, 20), rng.randint(2, 9)
    seq = [start + i * step for i in range(4)]
    return f"What number comes next: {', '.join(map(str, seq))}, ...?", f"{seq[-1] + step}."


def _words(rng: random.Random) -> tuple[str, str]:
    ws = rng.sample(WORDS, rng.randint(3, 5))
    kind = rng.randrange(3)
    if kind == 0:
        return f"Put these words in alphabetical order: {', '.join(ws)}.", ", ".join(sorted(ws)) + "."
    if kind == 1:
        return f"How many words are in this list: {', '.join(ws)}?", f"There are {len(ws)} words."
    longest = max(ws, key=lambda w: (len(w), w))
    return f"Which of these words is the longest: {', '.join(ws)}?", f"'{longest}' is the longest."


def _days(rng: random.Random) -> tuple[str, str]:
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    i, k = rng.randrange(7), rng.randint(1, 6)
    return f"If today is {days[i]}, what day is it in {k} day{'s' if k > 1 else ''}?", f"{days[(i + k) % 7]}."


TEXT_TASKS = (_arith, _compare, _sort, _spell, _sequence, _words, _days)
"""Templated text-only tasks whose answers are computed (language ability without media)."""


def text_task(rng: random.Random) -> tuple[str, str]:
    """One random templated text-only question with its computed answer."""
    return rng.choice(TEXT_TASKS)(rng)


SEED_INSTRUCTIONS: tuple[str, ...] = (
    "Write a short sentence about the sea.",
    "Give me a tip for sleeping well.",
    "Describe a cat in one sentence.",
    "What is a good name for a pet dog?",
    "Tell me one fact about the sun.",
    "Write a haiku about autumn.",
    "Explain what a bicycle is in one sentence.",
    "Suggest a healthy breakfast.",
    "How do I make a cup of tea?",
    "What is the colour of the sky on a clear day?",
    "Write a friendly greeting for a new neighbour.",
    "Name three fruits.",
    "Why do people wear coats in winter?",
    "Give a one-sentence summary of what a library is.",
    "What should I pack for a day at the beach?",
    "Describe the sound of rain.",
    "What is a piano?",
    "Give me a short motivational sentence.",
    "What do bees make?",
    "Write a sentence using the word 'bright'.",
)
"""Seed instructions the LLM answers itself (self-distilled text chat; see ``omnibind.data.qa_gen``)."""
