import copy

import pyarrow as pa

from palindrom.events.columns import EventColumns


def test_silver_columns_from_the_registered_schemas(repo_registry):
    columns = EventColumns(repo_registry.snapshot())
    fields = {f.name: f.type for f in columns.arrow_fields()}
    assert list(fields)[:8] == ["event_id", "event_type", "schema_version", "occurred_at", "user_id",
                                "session_id", "source", "event_date"]
    assert (fields["schema_version"], fields["occurred_at"], fields["event_date"]) == (
        pa.int64(), pa.timestamp("us", tz="UTC"), pa.date32())
    message = fields["conversation_message"]
    assert [message.field(i).name for i in range(message.num_fields)] == [  # v1's fields, then v2's
        "conversation_id", "turn", "role", "text", "language", "model"]
    assert fields["user_action"].field("properties").type == pa.string()  # free-form: JSON text
    assert set(fields) >= {"feedback_rating", "media_uploaded"}


def test_free_form_objects_become_canonical_json_text(repo_registry):
    columns = EventColumns(repo_registry.snapshot())
    value = columns.payload_value("user.action", {"action": "click", "target": "t",
                                                 "properties": {"b": [1, {"é": None}], "a": 2**70}})
    assert value == {"action": "click", "target": "t", "properties": '{"a":1180591620717411303424,"b":[1,{"é":null}]}'}
    other = {"action": "view", "target": "t"}
    assert columns.payload_value("user.action", other) == other
    message = {"conversation_id": "c", "turn": 0, "role": "user", "text": "hi"}
    assert columns.payload_value("conversation.message", message) is message  # nothing free-form


def test_a_boolean_payload_field_is_a_boolean_column(repo_registry):
    snapshot = copy.deepcopy(repo_registry.snapshot())
    rating = snapshot["feedback.rating"][1]
    rating["properties"]["payload"]["properties"]["edited"] = {"type": "boolean"}
    fields = {f.name: f.type for f in EventColumns(snapshot).arrow_fields()}
    assert fields["feedback_rating"].field("edited").type == pa.bool_()
