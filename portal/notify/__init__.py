"""Mail to customers, in three parts: the outbox (what is queued, sent, retried),
rendering (a notice's subject and body from templates/notices/) and transport (how a
message leaves: console or SMTP). Every mail goes through the outbox; nothing is sent
from inside a web request."""
