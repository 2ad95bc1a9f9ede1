"""``omnibind train CONFIG``: run a stage or a pipeline of stages from a YAML config.

Only typer and the standard library are imported at module level, so ``omnibind --help`` stays
instant; torch and the model load inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train_command(
    config: Annotated[Path, typer.Argument(help="A stage or pipeline YAML (see configs/train/).")],
    output: Annotated[str | None, typer.Option(help="Override the stage's output folder.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Override optim.max_steps (quick runs).")] = None,
    no_resume: Annotated[
        bool, typer.Option("--no-resume", help="Start over even if a last/ checkpoint exists.")
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bars (logs, CI).")] = False,
    merge_lora: Annotated[
        Path | None, typer.Option(help="After training, write a LoRA-merged copy of the result here.")
    ] = None,
) -> None:
    """Train: bind heads (contrastive), align a projector, instruction-tune (LoRA), or a whole pipeline.

    Runs unchanged under `accelerate launch` with DDP (configs/accelerate/ddp-cpu-2.yaml, ddp-gpu.yaml) or
    FSDP2 (fsdp.yaml), or `torchrun`; DeepSpeed stops with an error (not supported yet). A killed run
    resumes from its last checkpoint when started again with the same config, on any process count.
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from omnibind.errors import OmnibindError
    from omnibind.train.config import PipelineConfig, load_train_config
    from omnibind.train.loop import check_launch
    from omnibind.train.stages import run_pipeline, run_stage

    try:
        check_launch()  # before the model loads: a mis-launched distributed run fails in a second
        cfg = load_train_config(config)
        stages = cfg.stages if isinstance(cfg, PipelineConfig) else [cfg]
        for st in stages:
            if max_steps is not None:
                st.optim.max_steps = max_steps
                st.optim.warmup_steps = min(st.optim.warmup_steps, max(0, max_steps // 10))
            if no_resume:
                st.resume = False
        if output is not None:
            if isinstance(cfg, PipelineConfig):
                for i, st in enumerate(stages):
                    st.output = str(Path(output) / f"{i}-{st.stage}")
            else:
                cfg.output = output
        if isinstance(cfg, PipelineConfig):
            results = run_pipeline(cfg, progress=not no_progress)
            final = Path(cfg.final) if cfg.final else results[-1].final
        else:
            final = run_stage(cfg, progress=not no_progress).final
        if merge_lora is not None:
            from omnibind.train.lora import merge_lora as do_merge

            do_merge(final, merge_lora)
            typer.echo(f"merged model: {merge_lora}")
    except OmnibindError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"trained model: {final}")


def main() -> None:
    """``python -m omnibind.train.cli CONFIG`` (what `accelerate launch -m` runs)."""
    typer.run(train_command)


if __name__ == "__main__":
    main()
