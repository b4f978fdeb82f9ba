#!/bin/sh
# Entry point of the compose broker (eclipse-mosquitto:2): run Mosquitto with docker/mosquitto.conf
# and keep its password file and ACL those the app writes into the shared volume /spd-auth
# (manage.py sync_mqtt_auth, run by the bridge container at start and by the registry whenever a
# cabinet's credential changes). When they change, they are copied into /mosquitto/auth (owned by
# the mosquitto user, which the broker runs as) and the broker is told to read them again (SIGHUP).
set -eu

# Overridable for tests (tests/test_deployment.py runs this script against a local Mosquitto).
SOURCE="${SPD_AUTH_SOURCE:-/spd-auth}"
TARGET="${MOSQUITTO_AUTH_DIR:-/mosquitto/auth}"
CONFIG="${MOSQUITTO_CONFIG:-/mosquitto/config/mosquitto.conf}"
POLL="${SPD_AUTH_POLL_SECONDS:-5}"
mkdir -p "$TARGET"

install_files() {
    for name in passwd acl; do
        if [ -f "$SOURCE/$name" ]; then
            cp "$SOURCE/$name" "$TARGET/$name.new"
        else
            : > "$TARGET/$name.new"   # nothing issued yet: nobody may log in
        fi
        chown mosquitto:mosquitto "$TARGET/$name.new"
        chmod 0600 "$TARGET/$name.new"
        mv "$TARGET/$name.new" "$TARGET/$name"
    done
}

stamp() {
    cat "$SOURCE/passwd" "$SOURCE/acl" 2>/dev/null | md5sum
}

install_files
seen="$(stamp)"
mosquitto -c "$CONFIG" &
broker=$!
trap 'kill -TERM "$broker" 2>/dev/null; wait "$broker"; exit 0' TERM INT

while kill -0 "$broker" 2>/dev/null; do
    sleep "$POLL" &
    wait $! || true
    now="$(stamp)"
    if [ "$now" != "$seen" ]; then
        install_files
        kill -HUP "$broker"
        seen="$now"
    fi
done
wait "$broker"
