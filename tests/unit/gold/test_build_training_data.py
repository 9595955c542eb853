"""A spec's tokenizer from the Hugging Face Hub, pinned to a commit: taken from the local Hub cache
(what `huggingface-cli download REPO tokenizer.json --revision SHA` leaves on a machine or a cluster
image) without a network request, and named in the error where it can be neither found nor fetched.
No network here: the cache is filled by the test, in the Hub client's own layout."""

from __future__ import annotations

import pytest
from huggingface_hub import constants as hub_constants

from palindrom.training import tokenization
from palindrom.training.spec import load_spec, specs_dir
from pipelines.gold.build_training_data import given_tokenizer

REVISION = "0123456789abcdef0123456789abcdef01234567"


def hub_spec(tmp_path, repo_id: str):
    text = (specs_dir() / "chat_sft.yaml").read_text()
    trained = "  train: {type: bpe, vocab_size: 4096}"
    assert trained in text
    path = tmp_path / "hub_tokenizer.yaml"
    path.write_text(text.replace(trained, f"  hub_id: {repo_id}\n  revision: '{REVISION}'"))
    return load_spec(path)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub-cache"
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_a_hub_tokenizer_is_read_from_the_cache_at_its_pinned_revision(tmp_path, hub_cache):
    published = tokenization.train_bpe(["a chat about tokenizers, cached on this machine"] * 20, 300)
    snapshot = hub_cache / "models--acme--chat-tokenizer" / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    published.save(str(snapshot / "tokenizer.json"))

    tokenizer, origin, reference = given_tokenizer(hub_spec(tmp_path, "acme/chat-tokenizer"))
    assert (origin, reference) == ("hub", f"acme/chat-tokenizer@{REVISION}")
    assert tokenizer.to_str() == published.to_str()


def test_a_hub_tokenizer_that_cannot_be_had_is_named(tmp_path, hub_cache, monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # fail at once, not after retries
    with pytest.raises(tokenization.TokenizerError, match=f"tokenizer acme/absent@{REVISION} cannot be loaded"):
        given_tokenizer(hub_spec(tmp_path, "acme/absent"))
