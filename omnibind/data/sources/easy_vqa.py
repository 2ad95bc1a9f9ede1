"""easy-VQA (PyPI ``easy-vqa``, MIT): the one reader of its official questions and image files."""

from __future__ import annotations

from omnibind.errors import InputError


def split(official: str) -> tuple[list[str], list[str], list[int], dict[int, str]]:
    """(questions, answers, image ids, image id → PNG path) of the official ``train`` or ``test`` split."""
    try:
        import easy_vqa
    except ImportError as e:  # an optional extra
        raise InputError("easy-vqa", "not installed; pip install easy-vqa (omnibind[data])") from e
    if official == "train":
        qs, answers, ids = easy_vqa.get_train_questions()
        paths = easy_vqa.get_train_image_paths()
    else:
        qs, answers, ids = easy_vqa.get_test_questions()
        paths = easy_vqa.get_test_image_paths()
    return list(qs), list(answers), [int(i) for i in ids], {int(k): v for k, v in paths.items()}
