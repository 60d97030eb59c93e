// How a contact's timeline entry reads (GET /contacts/{id}/timeline): a message's own
// words, shortened, or the kind of event in the interface's language. The conversation's
// contact panel and the contact page show the same timeline.
import { t } from "./i18n.js";

const WORDS = () => ({
  "message.received": t("Message received"),
  "message.sent": t("Reply sent"),
  "note.added": t("Note added"),
  "conversation.status_changed": t("Status changed"),
  "conversation.assigned": t("Assignee changed"),
  "conversation.labels_changed": t("Labels changed"),
  "conversation.priority_changed": t("Priority changed"),
  "contact.stage_changed": t("Lifecycle stage changed"),
  "contact.attributes_changed": t("Details changed"),
  "contact.updated": t("Details changed"),
  "contact.owner_changed": t("Owner changed"),
  "contact.tags_changed": t("Tags changed"),
  "contact.merged": t("Contacts merged"),
  "contact.erased": t("Personal data erased"),
  "reply.channel_switched": t("Reply sent on another channel"),
  "routing.rule_fired": t("Routing rule applied"),
  "task.due": t("Task due"),
  "message.edited": t("Message edited by the customer"),
  "attachment.fetched": t("Attachment fetched"),
  "attachment.failed": t("Attachment could not be fetched"),
  "conversation.opened": t("Conversation started"),
  "conversation.reopened": t("Conversation reopened"),
  "conversation.participant_added": t("Follower added"),
  "conversation.participant_removed": t("Follower removed"),
  "contact.created": t("Contact created"),
  "contact.attributed": t("Source recorded"),
  "contact.merge_suggested": t("Possible duplicate found"),
  "contact.merge_dismissed": t("Merge suggestion dismissed"),
  "form.submitted": t("Form submitted"),
  "routing.escalated": t("Escalated to another team"),
  "note.deleted": t("Note deleted"),
  "conversation.team_changed": t("Team changed"),
  "sla.breached": t("SLA breached"),
});

/** The words of a message, at most `max` characters; else the event kind's name. */
export function timelineText(event, max = 140) {
  const message = event.message;
  if (message) {
    const text = (message.reply_text || message.text || message.subject || "").trim();
    return text.length > max ? `${text.slice(0, max)}…` : text || t("(no text)");
  }
  return WORDS()[event.kind] ?? event.kind;
}
