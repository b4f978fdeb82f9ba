from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0048_stock_held_by_place"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="hissettlementline",
            index=models.Index(
                condition=models.Q(("charge__isnull", True)), fields=["hospital", "settled_at"],
                name="his_line_unnamed_by_time",
            ),
        ),
    ]
