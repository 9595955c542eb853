import datetime as dt

import pytest

from palindrom.training.spec import DateRange, SpecError, all_specs, load_spec

GOOD = """\
description: test
sources:
  - {name: a, event_types: [conversation.message], dates: {from: -7d, to: today}, weight: 3}
  - {name: b, event_types: [media.uploaded], dates: {from: 2026-11-01, to: 2026-11-20}, weight: 1, max_upsample: 2}
documents: {kind: text}
tokenizer: {train: {type: bpe, vocab_size: 1000}}
output: {sequence_length: 64, packing: concat}
splits: {train: 0.8, validation: 0.1, test: 0.1, seed: 5}
"""


def write(tmp_path, text, name="my_set"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_the_shipped_specs_load():
    specs = {s.name: s for s in all_specs()}
    assert {"chat_sft", "pretrain_text", "multimodal_captions"} <= set(specs)
    assert specs["chat_sft"].documents.kind == "chat"
    assert specs["pretrain_text"].mix() == pytest.approx({"messages": 0.8, "captions": 0.2})
    assert specs["multimodal_captions"].output.packing == "none"


def test_name_is_the_file_stem_and_dates_resolve(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.name == "my_set"
    assert spec.mix() == {"a": 0.75, "b": 0.25}
    assert spec.sources[0].dates.resolve(dt.date(2026, 11, 27)) == (dt.date(2026, 11, 20), dt.date(2026, 11, 27))
    assert spec.sources[1].dates.resolve(dt.date(2026, 11, 27)) == (dt.date(2026, 11, 1), dt.date(2026, 11, 20))
    assert len(spec.sha256) == 64
    with pytest.raises(SpecError, match="is empty"):
        DateRange.model_validate({"from": "today", "to": "-1d"}).resolve(dt.date(2026, 11, 27))


@pytest.mark.parametrize(("change", "message"), [
    (("weight: 3", "weight: -1"), r"sources\.0\.weight: Input should be greater than 0"),
    (("kind: text", "kind: poem"), r"documents\.kind: Input should be 'chat', 'text' or 'multimodal'"),
    (("test: 0.1, seed", "test: 0.3, seed"), "train \\+ validation \\+ test must be 1"),
    (("from: -7d", "from: last week"), "neither an ISO date nor relative"),
    (("description: test", "description: test\ncolour: blue"), "colour: Extra inputs are not permitted"),
    (("{train: {type: bpe, vocab_size: 1000}}", "{hub_id: gpt2}"), "needs `revision`"),
    (("{train: {type: bpe, vocab_size: 1000}}", "{path: a.json, train: {vocab_size: 500}}"), "exactly one of"),
    (("name: b,", "name: a,"), "source names must be unique"),
    (("documents: {kind: text}", "documents: {kind: chat}"), "chat_template is required"),
    (("documents: {kind: text}", "documents: {kind: chat, chat_template: '{{ role }}: {{ content|upper }}'}"),
     r"documents: .*insert \{\{ content \}\} exactly once and unchanged \(for a system turn it does so 0 times"),
    (("documents: {kind: text}", "documents: {kind: chat, chat_template: '{{ messages }}'}"),
     "chat_template does not render a system turn: 'messages' is undefined"),
])
def test_errors_name_the_file_the_key_and_the_rule(tmp_path, change, message):
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(SpecError, match=message) as e:
        load_spec(path)
    assert str(path) in str(e.value)


def test_a_bad_item_of_the_only_source_is_the_one_error_reported(tmp_path):
    """Not also "sources: should have at least 1 item after validation, not 0" (pydantic counts the
    items that validated), and a rule's message without pydantic's "Value error, " prefix."""
    one_source = "\n".join(line for line in GOOD.splitlines() if "name: b" not in line) + "\n"
    path = write(tmp_path, one_source.replace("weight: 3", "weight: heavy"))
    with pytest.raises(SpecError) as e:
        load_spec(path)
    assert str(e.value) == (f"{path}: sources.0.weight: Input should be a valid number, "
                            "unable to parse string as a number")
    path = write(tmp_path, one_source.replace("test: 0.1, seed", "test: 0.3, seed"))
    with pytest.raises(SpecError) as e:
        load_spec(path)
    assert str(e.value) == f"{path}: splits: train + validation + test must be 1 (got 1.2)"


def test_unknown_spec_and_explicit_name(tmp_path):
    with pytest.raises(SpecError, match=r"no such dataset spec .*known: .*chat_sft"):
        load_spec("no_such_dataset")
    with pytest.raises(SpecError, match="the dataset's name is the file's stem"):
        load_spec(write(tmp_path, "name: other\n" + GOOD))


def test_curation_steps_are_validated_by_name_and_parameters(tmp_path):
    steps = "curation:\n  - {step: normalize_whitespace}\n  - {step: min_chars, min: 3}\n"
    spec = load_spec(write(tmp_path, GOOD + steps))
    assert [s.step for s in spec.curation] == ["normalize_whitespace", "min_chars"]
    with pytest.raises(SpecError, match=r"my_set\.yaml: curation\.0: .*tag 'drop_everything'"):
        load_spec(write(tmp_path, GOOD + "curation:\n  - {step: drop_everything}\n"))
    with pytest.raises(SpecError, match=r"curation\.0\.min_chars\.min: .*greater than or equal to 1"):
        load_spec(write(tmp_path, GOOD + "curation:\n  - {step: min_chars, min: 0}\n"))


def test_multimodal_examples_are_not_concatenated(tmp_path):
    text = GOOD.replace("documents: {kind: text}", "documents: {kind: multimodal}") + \
        "embeddings: {image: {model_name: m, model_revision: r}}\n"
    with pytest.raises(SpecError, match=r"output\.packing must be `none`"):
        load_spec(write(tmp_path, text))
