"""Tokenizers for training datasets: load a `tokenizer.json`, or train a byte-level BPE with the
`tokenizers` library on a corpus given in a fixed order (so the same corpus gives the same vocabulary)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
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


CHAT_ROLES = ("system", "user", "assistant")  # conversation.message's `role` enum (configs/schemas/events)
_CONTENT = "\x00content\x00"  # stands for a turn's text when the template is split around it


def chat_renderer(template: str):
    """The spec's per-turn chat template (Jinja, sandboxed as transformers renders chat templates),
    as render(role, content). It must insert the content once and unchanged (see `turn_framing`)."""
    from jinja2 import StrictUndefined, TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    try:
        compiled = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True) \
            .from_string(template)
    except TemplateError as e:
        raise TokenizerError(f"chat_template does not compile: {e}") from e

    def render(role: str, content: str) -> str:
        return compiled.render(role=role, content=content)

    for role in CHAT_ROLES:
        try:
            turn_framing(render, role)
        except TemplateError as e:
            raise TokenizerError(f"chat_template does not render a {role} turn: {e}") from e
    return render


def turn_framing(render, role: str) -> tuple[str, str]:
    """What the template writes before and after a `role` turn's content."""
    parts = render(role, _CONTENT).split(_CONTENT)
    if len(parts) != 2:
        raise TokenizerError(f"chat_template must insert {{{{ content }}}} exactly once and unchanged (for a "
                             f"{role} turn it does so {len(parts) - 1} times)")
    return parts[0], parts[1]


@contextlib.contextmanager
def special_tokens_as_text(tokenizer: Tokenizer) -> Iterator[None]:
    """The tokenizer reading special-token strings as plain text while in the block: a user who types
    "<|end|><|assistant|>" gets those characters, not the role tokens that would make a turn of them."""
    before = tokenizer.encode_special_tokens
    tokenizer.encode_special_tokens = True
    try:
        yield
    finally:
        tokenizer.encode_special_tokens = before


def from_json(text: str) -> Tokenizer:
    """A tokenizer from its JSON, parsed once per process (Spark tasks on one worker share it)."""
    return _parsed(text)


@functools.lru_cache(maxsize=4)
def _parsed(text: str) -> Tokenizer:
    return Tokenizer.from_str(text)


def _flat(token_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ids = np.fromiter(itertools.chain.from_iterable(token_lists), dtype=np.int32, count=int(offsets[-1]))
    return offsets, ids


def encode_texts(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, ids, loss mask) of plain documents, as `packing` takes them; every token is learnt.
    Special-token strings in a text are its characters (special_tokens_as_text)."""
    with special_tokens_as_text(tokenizer):
        encoded = tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
    offsets, ids = _flat([e.ids for e in encoded])
    return offsets, ids, np.ones(len(ids), dtype=np.int8)


def encode_chats(tokenizer: Tokenizer, render, chats: Sequence[Sequence[tuple[str, str]]]) \
        -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, ids, loss mask) of conversations: each (role, text) turn is the template's framing for
    its role (special tokens included) around its text (special-token strings in it read as text), so
    the mask is exactly 1 on the assistant's turns and 0 elsewhere, and no text can open a turn."""
    turns = [turn for chat in chats for turn in chat]
    framing = {role: [e.ids for e in tokenizer.encode_batch_fast(list(turn_framing(render, role)),
                                                                 add_special_tokens=False)]
               for role in {role for role, _ in turns}}
    with special_tokens_as_text(tokenizer):
        texts = tokenizer.encode_batch_fast([text for _, text in turns], add_special_tokens=False)
    turn_offsets, ids = _flat([framing[role][0] + text.ids + framing[role][1]
                               for (role, _), text in zip(turns, texts, strict=True)])
    learn = np.repeat(np.array([role == "assistant" for role, _ in turns], dtype=np.int8), np.diff(turn_offsets))
    per_chat = np.concatenate([[0], np.cumsum([len(chat) for chat in chats])]).astype(np.int64)
    return turn_offsets[per_chat], ids, learn
