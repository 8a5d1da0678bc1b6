"""Model and tokenizer folders that cannot be loaded: each gets one line saying what is missing, and a fix,
before transformers reads them (trainer/models/sources.py); transformers' own failure is the fallback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import load_config
from trainer.errors import UserError
from trainer.models.build import build_model, hf_config, load_tokenizer
from trainer.models.sources import check_sources

TOKENIZER = Path(load_config().model.tokenizer or "")
TOKENIZER_NEEDS = (
    "no tokenizer files in this folder; a tokenizer folder holds tokenizer.json, or tokenizer_config.json "
    "with tokenizer.model or vocabulary files (vocab.json + merges.txt, vocab.txt)"
)


def _error(call, *args) -> UserError:
    with pytest.raises(UserError) as info:
        call(*args)
    return info.value


def _model_folder(folder: Path, *, weights: bool) -> Path:
    """A model folder with config.json and the project's tokenizer; with weights if asked."""
    shutil.copytree(TOKENIZER, folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 400}))
    if weights:
        (folder / "model.safetensors").write_bytes(b"")  # only its name is checked before loading
    return folder


def test_tokenizer_given_as_a_file_asks_for_its_folder() -> None:
    file = TOKENIZER / "tokenizer.json"
    cfg = load_config([f"model.tokenizer={file}"]).model
    for call in (check_sources, load_tokenizer):
        err = _error(call, cfg)
        assert err.message == f"model.tokenizer={file}: a file, not a folder; give the folder that holds it"
        assert err.hint == f"use model.tokenizer={TOKENIZER}"


def test_tokenizer_folder_without_tokenizer_files_lists_what_it_needs(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not a tokenizer")
    err = _error(load_tokenizer, load_config([f"model.tokenizer={tmp_path}"]).model)
    assert err.message == f"model.tokenizer={tmp_path}: {TOKENIZER_NEEDS}"
    assert err.hint == (
        "give the folder a tokenizer was saved to (save_pretrained or hf download ID --local-dir DIR)"
    )


def test_model_folder_without_its_tokenizer_says_where_else_to_take_it(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model", weights=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    cfg = load_config(["model=llama", f"model.name_or_path={folder}"]).model
    err = _error(check_sources, cfg)
    assert err.message == f"model.name_or_path={folder}: {TOKENIZER_NEEDS}"
    assert err.hint == (
        "copy the tokenizer files into it, or set model.tokenizer=DIR (a tokenizer folder) or a hub id"
    )
    with_tokenizer = load_config(
        ["model=llama", f"model.name_or_path={folder}", f"model.tokenizer={TOKENIZER}"]
    )
    check_sources(with_tokenizer.model)  # the folder's other files are all there


def test_empty_folder_is_not_a_model_folder(tmp_path: Path) -> None:
    cfg = load_config(["model=llama", f"model.name_or_path={tmp_path}"]).model
    for call, args in ((check_sources, (cfg,)), (hf_config, (cfg, None)), (build_model, (cfg, None))):
        err = _error(call, *args)
        assert err.message == (
            f"model.name_or_path={tmp_path}: no config.json in this folder; a model folder holds config.json "
            "and its weights (model.safetensors or pytorch_model.bin, or shards with their index)"
        )
        assert err.hint == (
            "give the folder a model was saved to (model.save_pretrained(DIR) or "
            "hf download ID --local-dir DIR)"
        )


def test_model_folder_without_weights_says_so_and_how_to_start_from_random_init(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model", weights=False)
    expected = (
        f"model.name_or_path={folder}: no weights in this folder (looked for model.safetensors, "
        "model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json)"
    )
    preset = load_config(["model=llama", f"model.name_or_path={folder}"]).model
    for call, args in ((check_sources, (preset,)), (build_model, (preset, None))):
        err = _error(call, *args)
        assert (err.message, err.hint) == (
            expected,
            "put the model's weights in it; for random init from its config.json, "
            "set model.from_scratch=true",
        )
    # model=tiny made pretrained: its architecture must go too, or it would be used instead of config.json
    tiny = load_config([f"model.name_or_path={folder}", "model.from_scratch=false"]).model
    assert _error(check_sources, tiny).hint == (
        "put the model's weights in it; for random init from its config.json, set "
        "model.from_scratch=true model.architecture=null"
    )
    scratch = load_config(["model=llama", f"model.name_or_path={folder}", "model.from_scratch=true"]).model
    check_sources(scratch)  # random init reads only config.json and the tokenizer
    assert hf_config(scratch, None).vocab_size == 400
    _model_folder(tmp_path / "sharded", weights=False)
    (tmp_path / "sharded" / "model.safetensors.index.json").write_text("{}")
    check_sources(load_config(["model=llama", f"model.name_or_path={tmp_path / 'sharded'}"]).model)


def test_folder_transformers_cannot_read_keeps_its_first_line(tmp_path: Path) -> None:
    """A folder that has the right file names passes the checks; transformers' failure is reported."""
    (tmp_path / "tokenizer_config.json").write_text("{")
    err = _error(load_tokenizer, load_config([f"model.tokenizer={tmp_path}"]).model)
    assert err.message == (
        f"model.tokenizer={tmp_path}: could not load this folder (JSONDecodeError: Expecting property name "
        "enclosed in double quotes: line 1 column 2 (char 1))"
    )
    assert err.hint == (
        "check that it holds what save_pretrained or hf download wrote (files missing, cut short or edited "
        "by hand)"
    )


def test_missing_local_path_is_never_looked_up_on_the_hub(monkeypatch) -> None:
    """Reached without the config rules (a trained run's config used on another machine): still one line,
    with no hub probe and no 'hf download /models/...' advice."""
    monkeypatch.setattr("trainer.models.sources.require_hub", lambda *a: pytest.fail("probed the hub"))
    cfg = load_config(["model=llama"]).model.model_copy(update={"name_or_path": "/models/Llama-3.2-1B"})
    err = _error(hf_config, cfg, None)
    assert err.message == "model.name_or_path=/models/Llama-3.2-1B: no such folder"
    assert err.hint == (
        "check the path (a relative path starts where you run the command); a hub id is org/name, "
        "with no leading / . or ~"
    )
