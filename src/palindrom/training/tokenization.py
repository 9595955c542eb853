"""Tokenizers for training datasets: load a `tokenizer.json`, or train a byte-level BPE with the
`tokenizers` library on a corpus given in a fixed order (so the same corpus gives the same vocabulary)."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|eos|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, *ROLE_TOKENS)


class TokenizerError(ValueError):
    """A tokenizer cannot be loaded or lacks what the dataset needs; the message names it."""


def train_bpe(corpus: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE (every byte representable, so no unknown token) with the special tokens
    first in the vocabulary: <|pad|>=0, <|bos|>=1, <|eos|>=2, then the chat roles."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tokenizer


def load_tokenizer_file(path: str) -> Tokenizer:
    """A tokenizer.json by path, or `package:<module>/<file>` inside an installed model package."""
    if path.startswith("package:"):
        module, _, name = path.removeprefix("package:").partition("/")
        try:
            folder = importlib.import_module(module).get_model_path()
        except (ImportError, AttributeError) as e:
            raise TokenizerError(f"tokenizer {path}: package {module!r} does not provide a model path ({e})") from e
        path = str(Path(folder) / name)
    try:
        return Tokenizer.from_file(path)
    except Exception as e:  # tokenizers raises plain Exception subclasses for unreadable files
        raise TokenizerError(f"tokenizer {path} cannot be loaded: {e}") from e


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """Ids of the tokens packing needs: pad and eos (falling back to BERT-style [PAD]/[SEP])."""
    ids = {}
    for role, candidates in (("pad", (PAD, "[PAD]", "<pad>")), ("eos", (EOS, "[SEP]", "</s>", "<|endoftext|>"))):
        found = next((i for t in candidates if (i := tokenizer.token_to_id(t)) is not None), None)
        if found is None:
            raise TokenizerError(f"the tokenizer has no {role} token (looked for {', '.join(candidates)})")
        ids[role] = found
    return ids


def tokenizer_sha256(tokenizer: Tokenizer) -> str:
    return hashlib.sha256(tokenizer.to_str().encode()).hexdigest()


def chat_renderer(template: str):
    """The spec's per-turn chat template (Jinja, sandboxed as transformers renders chat templates)."""
    from jinja2 import StrictUndefined, TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        compiled = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True) \
            .from_string(template)
    except TemplateError as e:
        raise TokenizerError(f"chat_template does not compile: {e}") from e
    return lambda role, content: compiled.render(role=role, content=content)


def tokenize_chat(turns: list[tuple[str, str]], render, tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """(input ids, loss mask) of a conversation: each (role, text) turn rendered and tokenized on its
    own, so the mask is exactly 1 on the assistant's turns and 0 elsewhere."""
    ids: list[int] = []
    mask: list[int] = []
    for role, text in turns:
        turn_ids = tokenizer.encode(render(role, text), add_special_tokens=False).ids
        ids.extend(turn_ids)
        mask.extend([1 if role == "assistant" else 0] * len(turn_ids))
    return ids, mask
