"""The ONE routine that builds LLM inputs: template + modality cues + soft tokens → embeddings and labels.

Training loss, generation and candidate scoring all call ``assemble``; the anchors' worst bugs came
from diverging copies of this logic. Text is tokenised segment by segment, so label masking is exact
by construction; ``check_template`` additionally verifies that segment-wise tokenisation equals
whole-string tokenisation for a template and fails loudly when it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from omnibind.errors import TemplateMismatchError
from omnibind.llm.backends.base import LLMBackend
from omnibind.llm.chat_templates import ChatTemplate
from omnibind.messages import Conversation, Message, TextPart

IGNORE_INDEX = -100


@dataclass
class Segment:
    """A run of text (``media is None``) or one media slot (index into the soft-token list)."""

    text: str = ""
    media: int | None = None
    train: bool = False


@dataclass
class Slot:
    """One media input as the LLM sees it: a cue, its soft tokens (a video may give two slots) and
    an optional expert note (``omnibind.experts_text``) on its own line after them."""

    modality: str
    cue: str
    note: str = ""


@dataclass
class Assembled:
    """(T, H) input embeddings, (T,) labels (IGNORE_INDEX where not trained) and the count of text tokens."""

    embeds: torch.Tensor
    labels: torch.Tensor
    text_tokens: int


def render_segments(
    conversation: Conversation,
    template: ChatTemplate,
    slots_per_part: Sequence[Sequence[Slot]],
    *,
    add_generation_prompt: bool,
    system_prompt: str | None = None,
    inline_media: bool = True,
    cue_separator: str = " ",
    slot_end: str = "\n",
) -> list[Segment]:
    """Lay out a conversation as segments.

    ``slots_per_part`` gives, for each non-text part of the conversation in order, the slots it
    occupies. Each slot is ``cue + cue_separator + soft tokens + slot_end`` (default ``"<cue> "`` …
    ``"\n"``; just soft tokens + ``slot_end`` for an empty cue, LLaVA's ``"<image>\n"``), then its
    note and ``"\n"`` when it has one — the same text a dataset's expert fields give
    (``Sample.to_messages(experts=True)``). With
    ``inline_media=False`` (gated injection) media take no positions in the sequence and no cue
    (gated checkpoints were trained without one, and a text-only prompt stays identical at zero
    gates), but the note is still written: the feature enters through the layers' gates, the
    expert's words through the text, as a dataset's expert fields would put them.
    """
    segs: list[Segment] = []
    media_parts = iter(slots_per_part)
    slot_index = 0

    def text(t: str, train: bool = False) -> None:
        if t:
            segs.append(Segment(text=t, train=train))

    messages = list(conversation)
    system = system_prompt if system_prompt is not None else template.default_system
    if messages and messages[0].role == "system":
        system = messages.pop(0).text
    text(template.begin)
    pending_system = system if template.system_in_first_user else None
    if system and not template.system_in_first_user:
        text(template.system_start + system + template.system_end)
    for msg in messages:
        if msg.role == "system":
            raise ValueError("a system message may only come first")
        if msg.role == "user":
            text(template.user_start)
            if pending_system:
                text(template.system_start + pending_system + template.system_end)
                pending_system = None
            for part in msg.content:
                if isinstance(part, TextPart):
                    text(part.text)
                    continue
                for slot in next(media_parts):
                    if inline_media:
                        if slot.cue:  # an empty cue writes nothing (LLaVA: "USER: " + image + "\n")
                            text(slot.cue + cue_separator)
                        segs.append(Segment(media=slot_index))
                        text(slot_end)
                    if slot.note:
                        text(slot.note + "\n")
                    slot_index += 1
            text(template.user_end)
        else:
            text(template.assistant_start)
            text(template.assistant_content_prefix + msg.text + template.assistant_end, train=True)
            text(template.assistant_tail)
    if add_generation_prompt:
        text(template.assistant_start)
    return _merge_text(segs)


def _merge_text(segs: list[Segment]) -> list[Segment]:
    """Join neighbouring text runs with the same flag, so tokenisation sees the longest strings."""
    out: list[Segment] = []
    for s in segs:
        if out and s.media is None and out[-1].media is None and out[-1].train == s.train:
            out[-1] = Segment(text=out[-1].text + s.text, train=s.train)
        else:
            out.append(s)
    return out


def assemble(
    segments: list[Segment],
    soft_tokens: Sequence[torch.Tensor],
    backend: LLMBackend,
) -> Assembled:
    """Embed segments: text through the LLM's embedding table, media as their (k, H) soft tokens."""
    pieces: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    n_text = 0
    device = None
    for k, seg in enumerate(segments):
        if seg.media is not None:
            soft = soft_tokens[seg.media]
            pieces.append(soft)
            labels.append(torch.full((soft.shape[0],), IGNORE_INDEX, dtype=torch.long))
            continue
        ids = backend.tokenize_in_context(seg.text, at_start=k == 0)
        if not ids:
            continue
        n_text += len(ids)
        emb = backend.embed_tokens(ids)
        device = emb.device
        pieces.append(emb)
        labels.append(torch.tensor(ids, dtype=torch.long) if seg.train else torch.full((len(ids),), IGNORE_INDEX))
    if not pieces:
        raise ValueError("empty input: nothing to send to the language model")
    dtype = pieces[0].dtype
    embeds = torch.cat([p.to(device=device or p.device, dtype=dtype) for p in pieces], dim=0)
    return Assembled(embeds=embeds, labels=torch.cat(labels).to(embeds.device), text_tokens=n_text)


def check_template(template: ChatTemplate, backend: LLMBackend) -> None:
    """Fail loudly when masking or segment-wise tokenisation disagrees with the template.

    Checks, on a two-turn text conversation: (1) the labelled tokens decode to exactly the
    assistant replies with their end markers; (2) tokenising segment by segment gives the same ids
    as tokenising the whole rendered string (otherwise the model would see at inference tokens it
    was never trained on).
    """
    conv = [
        Message.user("Name a colour."),
        Message.assistant("Blue is a colour."),
        Message.user("And another one?"),
        Message.assistant("Green."),
    ]
    segs = render_segments(conv, template, [], add_generation_prompt=False)
    whole = "".join(s.text for s in segs)
    seg_ids = [i for k, s in enumerate(segs) for i in backend.tokenize_in_context(s.text, at_start=k == 0)]
    whole_ids = backend.tokenize_in_context(whole, at_start=True)
    if seg_ids != whole_ids:
        raise TemplateMismatchError(
            f"template {template.name!r}: segment-wise tokenisation differs from whole-string tokenisation "
            f"({len(seg_ids)} vs {len(whole_ids)} tokens) for {whole!r}"
        )
    trained = [s.text for s in segs if s.train]
    expected = [
        template.assistant_content_prefix + m.text + template.assistant_end for m in conv if m.role == "assistant"
    ]
    if trained != expected:
        raise TemplateMismatchError(f"template {template.name!r}: trained spans {trained!r} != {expected!r}")
    assembled = assemble(segs, [], backend)
    labelled = [int(t) for t in assembled.labels if t != IGNORE_INDEX]
    want = [i for e in expected for i in backend.tokenize_in_context(e, at_start=False)]
    if labelled != want:
        raise TemplateMismatchError(f"template {template.name!r}: labels do not cover exactly the replies")
