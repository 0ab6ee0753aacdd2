"""Education classes: the ``POST /education/classes`` body and how a lost create is found again.

A class *is* a Microsoft 365 group with the same id (graph-facts.md §8); creating it through the
education API is what lets Teams' ``educationClass`` template accept it. The educationClass
resource has no ``resourceBehaviorOptions`` and no place for our marker, so the class is created
with its own properties only and then stamped with the marker through ``PATCH /groups/{id}``.
Owners cannot be bound at creation either: teachers are added right after
(``POST /education/classes/{id}/teachers/$ref``), learners as group members.

Needs the application permission ``EduRoster.ReadWrite.All`` (the only one the create accepts).
"""

from __future__ import annotations

from typing import Any

from reconciler.model import Group

__all__ = ["CLASSES", "class_body", "external_id_filter", "teacher_ref"]

CLASSES = "/education/classes"


def class_body(group: Group) -> dict[str, Any]:
    """The educationClass a group with ``education`` set is created as (externalSource ``sis``)."""
    edu = group.education
    if edu is None:
        raise ValueError(f"group {group.key} is not an education class")
    body: dict[str, Any] = {
        "displayName": group.display_name,
        "mailNickname": group.mail_nickname,
        "externalId": edu.external_id,
        "externalSource": "sis",
    }
    if group.description:
        body["description"] = group.description
    if edu.class_code:
        body["classCode"] = edu.class_code
    if edu.external_name:
        body["externalName"] = edu.external_name
    if edu.term:
        body["term"] = {"displayName": edu.term, "externalId": edu.term}
    return body


def external_id_filter(external_id: str) -> str:
    """The ``$filter`` that finds a class by its externalId (after a lost create response)."""
    return "externalId eq '" + external_id.replace("'", "''") + "'"


def teacher_ref(graph_base: str, user_id: str) -> dict[str, str]:
    """The body that adds a teacher (Graph's example names the education user)."""
    return {"@odata.id": f"{graph_base}/education/users/{user_id}"}
