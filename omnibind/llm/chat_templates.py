"""Chat templates as data.

A template is a handful of strings. ``omnibind.llm.assemble`` turns a conversation into text
segments, each flagged as trained (assistant content and its end marker) or not, so label masking
is one generic routine for every template. ``check_template`` verifies that masking for a template
recovers exactly the assistant text — tests run it for every registered template.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from omnibind.registry import Registry


@dataclass(frozen=True)
class ToolFormat:
    """How a template writes function calls and their results (OpenAI ``tools``), as data.

    The model is told about the tools in the system turn (``preamble`` with ``{tools}`` replaced
    by one JSON signature per line); a call is ``call_start + {"name": ..., "arguments": {...}} +
    call_end`` in the assistant's text; a result goes back as a ``response_role`` turn wrapped in
    ``response_start`` / ``response_end`` (consecutive results share one turn).
    """

    name: str
    preamble: str
    call_start: str
    call_end: str
    response_start: str
    response_end: str
    response_role: str = "user"


# The Hermes / Qwen2.5 format: JSON inside <tool_call> tags, results inside <tool_response> tags
# in a user turn. SmolLM2's own template defines no tool format, so omnibind uses this one for it.
HERMES_TOOLS = ToolFormat(
    name="hermes",
    preamble=(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
    ),
    call_start="<tool_call>\n",
    call_end="\n</tool_call>",
    response_start="<tool_response>\n",
    response_end="\n</tool_response>",
)


@dataclass(frozen=True)
class ChatTemplate:
    """Strings around each turn. ``assistant_end`` is trained (the model must learn to stop);
    ``assistant_tail`` follows it untrained (e.g. a newline)."""

    name: str
    system_start: str
    system_end: str
    user_start: str
    user_end: str
    assistant_start: str
    assistant_end: str
    assistant_tail: str = ""
    assistant_content_prefix: str = ""  # trained text glued to the reply (Vicuna's " " after "ASSISTANT:")
    begin: str = ""
    default_system: str | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    system_in_first_user: bool = False  # Llama-2 folds the system prompt into the first user turn
    tools: ToolFormat = HERMES_TOOLS  # how function calls are written (no template here has its own yet)


TEMPLATES: Registry[ChatTemplate] = Registry("chat template")


def _add(t: ChatTemplate) -> None:
    TEMPLATES.add(t.name, t)


CHATML = ChatTemplate(
    name="chatml",
    system_start="<|im_start|>system\n",
    system_end="<|im_end|>\n",
    user_start="<|im_start|>user\n",
    user_end="<|im_end|>\n",
    assistant_start="<|im_start|>assistant\n",
    assistant_end="<|im_end|>",
    assistant_tail="\n",
    stop=("<|im_end|>",),
)
_add(CHATML)
# SmolLM2's own template: ChatML with its default system prompt (from the model's chat_template).
_add(
    replace(
        CHATML, name="smollm2", default_system="You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    )
)
# Vicuna v1.1 (PandaGPT's LLM).
_add(
    ChatTemplate(
        name="vicuna_v1",
        begin="<s>",
        system_start="",
        system_end=" ",
        user_start="USER: ",
        user_end=" ",
        assistant_start="ASSISTANT:",
        assistant_content_prefix=" ",
        assistant_end="</s>",
        default_system=(
            "A chat between a curious user and an artificial intelligence assistant. "
            "The assistant gives helpful, detailed, and polite answers to the user's questions."
        ),
        stop=("</s>", "USER:"),
    )
)
# LLaVA-1.5 (haotian-liu/LLaVA conv_vicuna_v1, the format it was trained and evaluated in): Vicuna
# v1.1's separators with LLaVA's own system prompt ("human", not "user"); the image goes first in
# the user turn as soft tokens + "\n" (an empty image cue), like llava-hf's "USER: <image>\n...".
_add(
    ChatTemplate(
        name="llava_v1",
        begin="<s>",
        system_start="",
        system_end=" ",
        user_start="USER: ",
        user_end=" ",
        assistant_start="ASSISTANT:",
        assistant_content_prefix=" ",
        assistant_end="</s>",
        default_system=(
            "A chat between a curious human and an artificial intelligence assistant. "
            "The assistant gives helpful, detailed, and polite answers to the human's questions."
        ),
        stop=("</s>", "USER:"),
    )
)
# PandaGPT (yxuansu/PandaGPT code/model/openllama.py): "### Human: <Img>" + feature + "</Img> " +
# question + "\n### Assistant:", replies end with "\n###" (its stop token 2277), and a later turn
# goes on " Human: ..."; so "###" opens the sequence and each reply's end marker opens the next turn.
# Media cues are "<Img>" with no separator and "</Img> " after the soft token (see the importer).
_add(
    ChatTemplate(
        name="pandagpt",
        begin="<s>###",
        system_start="",
        system_end="",
        user_start=" Human: ",
        user_end="\n",
        assistant_start="### Assistant:",
        assistant_content_prefix=" ",
        assistant_end="\n###",
        stop=("###",),
    )
)
_add(
    ChatTemplate(
        name="llama2",
        begin="<s>",
        system_start="<<SYS>>\n",
        system_end="\n<</SYS>>\n\n",
        user_start="[INST] ",
        user_end=" [/INST]",
        assistant_start="",
        assistant_content_prefix=" ",
        assistant_end=" </s>",
        assistant_tail="<s>",
        system_in_first_user=True,
        stop=("</s>",),
    )
)
_add(
    ChatTemplate(
        name="llama3",
        begin="<|begin_of_text|>",
        system_start="<|start_header_id|>system<|end_header_id|>\n\n",
        system_end="<|eot_id|>",
        user_start="<|start_header_id|>user<|end_header_id|>\n\n",
        user_end="<|eot_id|>",
        assistant_start="<|start_header_id|>assistant<|end_header_id|>\n\n",
        assistant_end="<|eot_id|>",
        stop=("<|eot_id|>",),
    )
)
_add(
    ChatTemplate(
        name="gemma",
        begin="<bos>",
        system_start="<start_of_turn>user\n",
        system_end="\n",
        user_start="<start_of_turn>user\n",
        user_end="<end_of_turn>\n",
        assistant_start="<start_of_turn>model\n",
        assistant_end="<end_of_turn>",
        assistant_tail="\n",
        system_in_first_user=True,
        stop=("<end_of_turn>",),
    )
)
# LLaVA's "plain" alignment format: media then caption, no chat markup.
_add(
    ChatTemplate(
        name="plain",
        system_start="",
        system_end="",
        user_start="",
        user_end="",
        assistant_start="",
        assistant_end="\n",
        stop=("\n",),
    )
)
