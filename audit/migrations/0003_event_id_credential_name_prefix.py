"""Audit events get a gateway-given event id (unique: writes are idempotent) and keep the
credential's name and prefix as they were at call time.

Existing rows get a fresh event id each (added nullable, filled, then made unique and required) and
their credential's current name and prefix, when the credential still exists.
"""

import uuid

from django.db import migrations, models

_CHUNK = 2000


def fill_event_ids_and_credentials(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    Credential = apps.get_model("gateway", "Credential")
    alias = schema_editor.connection.alias
    credentials = {c.id: (c.name, c.prefix) for c in Credential.objects.using(alias).only("name", "prefix")}
    while True:
        events = list(
            AuditEvent.objects.using(alias).filter(event_id__isnull=True).only("id", "credential_id")[:_CHUNK]
        )
        if not events:
            return
        for event in events:
            event.event_id = uuid.uuid4()
            event.credential_name, event.credential_prefix = credentials.get(event.credential_id, ("", ""))
        AuditEvent.objects.using(alias).bulk_update(
            events, ["event_id", "credential_name", "credential_prefix"]
        )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_auditevent_meter_notes_auditevent_response_values"),
        ("gateway", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="event_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="credential_name",
            field=models.CharField(
                blank=True, help_text="The credential's name at the time of the call.", max_length=200
            ),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="credential_prefix",
            field=models.CharField(
                blank=True, help_text="The credential's token prefix at the time of the call.", max_length=16
            ),
        ),
        migrations.RunPython(fill_event_ids_and_credentials, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="event_id",
            field=models.UUIDField(
                default=uuid.uuid4,
                editable=False,
                help_text="Given by the gateway; makes writes idempotent.",
                unique=True,
            ),
        ),
    ]
