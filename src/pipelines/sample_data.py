"""A realistic day of raw events for landing/events/, dirt included (`pipelines sample-data`).

The media uploads name the real files `pipelines.sample_media` writes into landing/.

Thousands of users with multi-turn conversations in several languages (both versions of
conversation.message), ratings, media uploads and actions, timestamps in several UTC offsets; and
the dirt real feeds carry: truncated lines, wrong types, unknown types, missing fields, identical
and conflicting duplicates, invalid UTF-8, a gzip file and a CRLF file. Deterministic for a seed.
Files are written under a temporary name and renamed into place, as the landing contract requires;
a file already in landing is never rewritten (see `write_landing_file`).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.sample_media import SAMPLE_MEDIA, write_landing_file

PHRASES = {
    "en": ["How do I reset my password?", "Can you summarise this article for me?",
           "Write a haiku about autumn.", "What is the capital of Australia?", "Explain recursion simply."],
    "de": ["Wie setze ich mein Passwort zurück?", "Kannst du diesen Text übersetzen?",
           "Was ist der Unterschied zwischen Bund und Ländern?", "Schreib mir ein Gedicht über Füchse."],
    "fr": ["Peux-tu m'aider à écrire une lettre ?", "Quelle est la recette des crêpes ?",
           "Explique-moi la photosynthèse.", "Résume ce chapitre, s'il te plaît."],
    "es": ["¿Cómo se dice 'gracias' en japonés?", "Necesito ideas para una fiesta de cumpleaños.",
           "¿Qué significa «mañana» aquí?"],
    "ja": ["東京でおすすめのラーメン屋は？", "この文章を英語に翻訳してください。", "量子コンピュータとは何ですか？"],
    "uk": ["Як приготувати борщ?", "Поясни, що таке машинне навчання."],
}
ANSWERS = {
    "en": ["Sure! Here is a short answer.", "Here are three steps you can follow.", "Great question."],
    "de": ["Gern! Hier ist eine kurze Antwort.", "Hier sind drei Schritte."],
    "fr": ["Bien sûr ! Voici une réponse courte.", "Voici trois étapes."],
    "es": ["¡Claro! Aquí tienes una respuesta.", "Estos son tres pasos."],
    "ja": ["もちろんです。こちらが答えです。", "三つの手順があります。"],
    "uk": ["Звісно! Ось коротка відповідь.", "Ось три кроки."],
}
OFFSETS = ["Z", "+00:00", "+01:00", "-05:00", "+05:30", "+09:00", "-08:00"]
MODELS = ["palindrom-chat-1", "palindrom-chat-2"]


@dataclass(frozen=True)
class SampleSummary:
    files: list[str]
    lines: int
    valid_events: int
    already_there: list[str]  # of `files`: the same bytes were in landing already


def _timestamp(rng: random.Random, day: dt.date, base_seconds: int) -> str:
    offset = rng.choice(OFFSETS)
    instant = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=base_seconds)
    if offset in ("Z", "+00:00"):
        local = instant
    else:
        sign = 1 if offset[0] == "+" else -1
        local = instant + sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    fraction = f".{rng.randrange(10**6):06d}" if rng.random() < 0.5 else ""
    return local.strftime("%Y-%m-%dT%H:%M:%S") + fraction + offset


def generate_events(rng: random.Random, day: dt.date, users: int) -> Iterator[dict]:
    n = 0

    def envelope(event_type: str, version: int, user: str, at: int, payload: dict) -> dict:
        nonlocal n
        n += 1
        event = {"event_id": f"evt-{day:%Y%m%d}-{n:07d}", "event_type": event_type, "schema_version": version,
                 "occurred_at": _timestamp(rng, day, at), "user_id": user, "payload": payload}
        if rng.random() < 0.8:
            event["session_id"] = f"sess-{rng.randrange(10**8):08d}"
        if rng.random() < 0.9:
            event["source"] = rng.choice(["web", "ios", "android", "api"])
        return event

    for u in range(users):
        user = f"user-{u:05d}"
        language = rng.choice(list(PHRASES))
        for c in range(rng.randrange(0, 3)):
            conversation = f"conv-{u:05d}-{c}"
            at = rng.randrange(0, 86_000 - 600)
            version = 2 if rng.random() < 0.5 else 1
            turns = rng.randrange(2, 8)
            for turn in range(turns):
                role = "system" if turn == 0 and rng.random() < 0.2 else ("user" if turn % 2 == 0 else "assistant")
                text = rng.choice(PHRASES[language] if role != "assistant" else ANSWERS[language])
                payload = {"conversation_id": conversation, "turn": turn, "role": role, "text": text}
                if version == 2:
                    payload["language"] = language
                    if role == "assistant":
                        payload["model"] = rng.choice(MODELS)
                message = envelope("conversation.message", version, user, at + turn * 20, payload)
                yield message
                if role == "assistant" and rng.random() < 0.3:
                    rating = {"conversation_id": conversation, "message_event_id": message["event_id"],
                              "rating": rng.choice([1, 1, 1, -1])}
                    if rng.random() < 0.3:
                        rating["comment"] = rng.choice(["Helpful, thanks!", "Not what I asked.", " Très bien "])
                    yield envelope("feedback.rating", 1, user, at + turn * 20 + 5, rating)
        if rng.random() < 0.15:
            media = rng.choice(SAMPLE_MEDIA)  # each upload names a file `write_sample_media` writes
            payload = {"media_id": f"media-{u:05d}", "media_type": media.media_type, "file_name": media.path,
                       "mime_type": media.mime_type, "size_bytes": rng.randrange(1_000, 5_000_000)}
            payload["caption" if media.media_type != "audio" else "transcript"] = (
                media.caption or rng.choice(PHRASES[language]))
            yield envelope("media.uploaded", 1, user, rng.randrange(0, 86_000), payload)
        for _ in range(rng.randrange(0, 4)):
            action = {"action": rng.choice(["click", "view", "share", "copy", "regenerate"]),
                      "target": rng.choice(["message", "sidebar", "settings", "share-dialog"])}
            if rng.random() < 0.3:
                action["properties"] = {"position": rng.randrange(10), "experiment": "b"}
            yield envelope("user.action", 1, user, rng.randrange(0, 86_000), action)


def dirty_lines(rng: random.Random, good: list[dict]) -> list[bytes]:
    """Twelve lines every real feed eventually carries, made from events of `good` (at least 12): each
    maps to one reason code or dedup rule (three identical duplicates, one conflicting), and one is blank."""
    sample = rng.sample(good, 12)
    lines = [json.dumps(e).encode() for e in sample[:3]]  # identical duplicates, re-sent later
    conflicting = dict(sample[3], user_id=sample[3]["user_id"] + "-other")
    lines.append(json.dumps(conflicting).encode())
    lines.append(json.dumps(sample[4]).encode()[:-17])  # truncated mid-object
    wrong_type = json.loads(json.dumps(sample[5]))
    wrong_type["schema_version"] = "1"
    lines.append(json.dumps(dict(wrong_type, event_id=wrong_type["event_id"] + "-wt")).encode())
    lines.append(json.dumps(dict(sample[6], event_type="payment.completed", event_id="evt-unknown-1")).encode())
    missing = {k: v for k, v in sample[7].items() if k != "user_id"}
    lines.append(json.dumps(dict(missing, event_id=missing["event_id"] + "-mf")).encode())
    lines.append(json.dumps(dict(sample[8], occurred_at="2026-02-30T10:00:00Z", event_id="evt-badts-1")).encode())
    lines.append(b"{'event_id': 'single-quoted'}")
    lines.append(b'{"event_id": "x", "event_id": "y"}')
    lines.append(b"\xff\xfe not utf-8 at all")
    lines.append(b"[1, 2, 3]")
    lines.append(b"   ")  # blank: skipped, never a row
    return lines


def write_sample_data(landing: Path, day: dt.date, users: int = 3000, seed: int = 7) -> SampleSummary:
    """Write the sample day into `landing` (landing/events/); returns what was written."""
    rng = random.Random(seed)
    good = list(generate_events(rng, day, users))
    folder = landing / day.isoformat()
    encoded = [json.dumps(e, ensure_ascii=rng.random() < 0.5).encode() for e in good]
    chunks = [encoded[i::4] for i in range(4)]
    dirt = dirty_lines(rng, good)
    files = {
        "events-0001.jsonl": b"\n".join(chunks[0]) + b"\n",
        "events-0002.jsonl": b"\xef\xbb\xbf" + b"\r\n".join(chunks[1]) + b"\r\n",  # BOM + CRLF
        "events-0003.jsonl.gz": gzip.compress(b"\n".join(chunks[2]) + b"\n", mtime=0),
        "events-0004.jsonl": b"\n".join(chunks[3] + dirt),  # no final newline
    }
    already_there = [name for name, content in files.items() if not write_landing_file(folder / name, content)]
    non_blank = len(good) + sum(1 for d in dirt if d.strip())
    return SampleSummary([f"{day.isoformat()}/{n}" for n in files], non_blank, len(good),
                         [f"{day.isoformat()}/{n}" for n in already_there])
