"""API tokens keep only the SHA-256 of their key; existing keys go on working (0005 drops the keys)."""

import hashlib

from django.db import migrations, models


def hash_keys(apps, schema_editor):
    ApiToken = apps.get_model("experiments", "ApiToken")
    for token in ApiToken.objects.all():
        token.digest = hashlib.sha256(token.key.encode()).hexdigest()
        token.prefix = token.key[:8]
        token.save(update_fields=["digest", "prefix"])


class Migration(migrations.Migration):
    dependencies = [("experiments", "0003_share_links_and_publish_tokens")]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="digest",
            field=models.CharField(
                default="", max_length=64, help_text="SHA-256 of the key (hex); the key itself is not kept."
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="prefix",
            field=models.CharField(
                default="", max_length=8, help_text="The key's first characters, to tell tokens apart."
            ),
            preserve_default=False,
        ),
        migrations.RunPython(hash_keys, migrations.RunPython.noop),
    ]
