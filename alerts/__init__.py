"""Alerting: rules measured with the read side's queries, evaluated in the background, notified
through webhook, Slack, PagerDuty and e-mail channels (docs/alerts.md). A layer beside access/
and pages/: it imports core/, db/ and pages/, never an edge."""
