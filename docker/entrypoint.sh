#!/bin/sh
# Container entrypoint for the SPD image.
#   web    -> apply migrations (as the tables' owner when DATABASE_MIGRATE_URL is set, then
#             grant the application's role its privileges), then gunicorn
#   worker -> Celery worker
#   beat   -> Celery beat
#   mqtt   -> write the broker's password file and ACL, then the MQTT cabinet bridge
#   *      -> exec the command as given (e.g. the image's default gunicorn CMD,
#             or "python manage.py createsuperuser")
set -eu

case "${1:-}" in
    web)
        shift
        if [ -n "${DATABASE_MIGRATE_URL:-}" ]; then
            SPD_DB_AS_OWNER=1 python manage.py migrate --noinput
            SPD_DB_AS_OWNER=1 python manage.py grant_app_privileges
        else
            python manage.py migrate --noinput
        fi
        # Worker class, processes and threads: spd/gunicorn_conf.py (GUNICORN_WORKERS, GUNICORN_THREADS).
        exec gunicorn spd.wsgi:application \
            --config spd/gunicorn_conf.py \
            --bind 0.0.0.0:8000 \
            --access-logfile - \
            "$@"
        ;;
    worker)
        shift
        exec celery -A spd worker -l info "$@"
        ;;
    beat)
        shift
        exec celery -A spd beat -l info \
            --schedule /var/lib/spd/celerybeat-schedule "$@"
        ;;
    mqtt)
        shift
        python manage.py sync_mqtt_auth
        exec python manage.py run_mqtt_bridge "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
