"""The keys themselves go, now that 0004 stored their digests (a migration of its own, so the
schema change runs in a transaction apart from 0004's data change, as PostgreSQL wants)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("experiments", "0004_api_tokens_hashed")]

    operations = [
        migrations.RemoveField(model_name="apitoken", name="key"),
        migrations.AlterField(
            model_name="apitoken",
            name="digest",
            field=models.CharField(
                max_length=64, unique=True, help_text="SHA-256 of the key (hex); the key itself is not kept."
            ),
        ),
    ]
