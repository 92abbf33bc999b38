"""Words for the values the engine stores (statuses, kinds, tracks, roles, ...), marked for translation.

`N_` only marks a string for extraction (pybabel -k N_); templates translate it with the `label` filter.
"""

from __future__ import annotations


def N_(text: str) -> str:
    return text


LABELS: dict[str, dict[str, str]] = {
    "status": {"draft": N_("Draft"), "active": N_("Active"), "completed": N_("Completed"),
               "cancelled": N_("Cancelled")},
    "kind": {"decision": N_("Decision"), "circular": N_("Circular"), "directive": N_("Directive"),
             "recommendation": N_("Recommendation")},
    "track": {"business": N_("Business"), "technology": N_("Technology"),
              "human_resources": N_("Human resources")},
    "programme_track": {"baraa": N_("Bara'a"), "tansiq": N_("Tansiq"), "none": N_("None")},
    "priority": {"normal": N_("Normal"), "high": N_("High"), "urgent": N_("Urgent")},
    "role": {"admin": N_("Administrator"), "secretariat": N_("Secretariat"),
             "follow_up_officer": N_("Follow-up officer"), "supervisor": N_("Supervisor"),
             "entity_user": N_("Entity user"), "leadership": N_("Committee leadership"), "viewer": N_("Viewer")},
    "instance_status": {"running": N_("Under way"), "completed": N_("Completed"), "cancelled": N_("Cancelled"),
                        "incident": N_("Incident")},
    "token_state": {"ready": N_("Ready"), "waiting": N_("Waiting"), "started": N_("In progress")},
    "value_kind": {"text": N_("Text"), "number": N_("Number"), "boolean": N_("Yes or no"), "json": N_("JSON")},
    "step_status": {"open": N_("Open"), "completed": N_("Done"), "withdrawn": N_("Withdrawn")},
    "escalation_status": {"open": N_("Open"), "resolved": N_("Resolved")},
    "reason": {"overdue": N_("Overdue"), "unacknowledged": N_("Not acknowledged"), "loop_cap": N_("Too many rounds"),
               "manual": N_("Raised by a supervisor")},
    "action": {"extend": N_("Extend"), "reassign": N_("Reassign"), "escalate": N_("Escalate"), "close": N_("Close"),
               "comment": N_("Comment")},
    "outcome": {"done": N_("Done"), "cancelled": N_("Cancelled")},
    "calendar_mode": {"season": N_("Around the clock (season)"), "working_days": N_("Working days")},
    "entity_kind": {"service": N_("Service"), "government": N_("Government"), "operator": N_("Operator"),
                    "private": N_("Private"), "other": N_("Other")},
    "report_kind": {"daily": N_("Daily report"), "periodic": N_("Periodic report"),
                    "seasonal": N_("Seasonal report")},
    "report_status": {"queued": N_("Queued"), "running": N_("Running"), "succeeded": N_("Ready"),
                      "failed": N_("Failed")},
    "decision": {"accept": N_("Accept"), "return": N_("Return for rework"), "cancel": N_("Cancel the directive")},
    # Fields of the shipped models' step forms (their JSON Schemas carry no titles).
    "field": {"note": N_("Note"), "summary": N_("What was done"), "evidence": N_("Evidence"),
              "accepted": N_("Accept the work"), "reason": N_("Reason"), "decision": N_("Decision"),
              "approved": N_("Approve the extension")},
    # Tansiq's own actors in the audit trail (people are shown by their names: api.web.people).
    "actor": {"timer": N_("Tansiq (deadlines)"), "system": N_("Tansiq"), "demo": N_("The demo season"),
              "public": N_("The public feedback form")},
    # Audit trail actions, for the timeline.
    "event": {
        "directive.created": N_("Directive registered"), "directive.launched": N_("Directive launched"),
        "directive.cancelled": N_("Directive cancelled"), "directive.deadline_changed": N_("Deadline changed"),
        "directive.reassigned": N_("Reassigned to another entity"), "instance.started": N_("Process started"),
        "instance.completed": N_("Process ended"), "instance.cancelled": N_("Process cancelled"),
        "step.completed": N_("Step completed"), "instance.retried": N_("Process retried"),
        "step.claimed": N_("Step taken"), "step.released": N_("Step released"),
        "step.progress": N_("Progress reported"), "evidence.uploaded": N_("Evidence uploaded"),
        "extension.requested": N_("More time asked"), "escalation.raised": N_("Escalation raised"),
        "escalation.resolved": N_("Escalation resolved"), "escalation.commented": N_("Comment on an escalation"),
        "supervisor.extend": N_("Supervisor extended the deadline"), "supervisor.reassign": N_("Supervisor reassigned"),
        "supervisor.escalate": N_("Supervisor escalated"), "supervisor.close": N_("Supervisor closed"),
        "notification.queued": N_("Notification queued"), "message.received": N_("Message received"),
        "instance.incident": N_("Incident"),
        "instance.variables_corrected": N_("Variables corrected"), "instance.migrated": N_("Moved to another version"),
        "model.deployed": N_("Model deployed"), "decision.deployed": N_("Decision table deployed"),
        "directive.raised_from_feedback": N_("Raised from pilgrim feedback"),
        "directives.imported": N_("Directives imported from Excel"), "entity.created": N_("Entity added"),
        "feedback.raised": N_("A directive was raised from this feedback"),
        "feedback.received": N_("Feedback received"),
        "feedback.updated": N_("Feedback updated"), "meeting.created": N_("Meeting registered"),
        "meeting.launch_all_refused": N_("Launching the meeting's directives was refused"),
        "meeting.launched_all": N_("The meeting's directives launched"),
        "meeting.minutes_attached": N_("Minutes attached"), "meeting.recommendation_added": N_("Recommendation added"),
        "meeting.updated": N_("Meeting updated"), "report.failed": N_("Report failed"),
        "report.generated": N_("Report made"), "season.created": N_("Season created"),
        "season.updated": N_("Season updated"), "user.created": N_("User added"),
        "user.tokens_revoked": N_("User's sessions revoked"), "user.updated": N_("User updated"),
    },
}


def label(group: str, value: str | None) -> str:
    """The untranslated English word (the msgid) for a stored value; the value itself when unknown."""
    if value is None:
        return ""
    return LABELS.get(group, {}).get(value, value.replace("_", " "))
