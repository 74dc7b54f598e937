#!/usr/bin/env bash
# Makes sure the local PostgreSQL and RabbitMQ are up (starting Debian-installed ones that
# stopped) and that the product's database exists. Safe to run again and again.
set -euo pipefail

PGURL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tasks}"
PGHOSTPORT="$(node -e 'const u=new URL(process.argv[1]);console.log(u.hostname+" "+(u.port||5432)+" "+(u.username||"postgres")+" "+u.pathname.slice(1))' "$PGURL")"
read -r PGH PGP PGU PGDB <<<"$PGHOSTPORT"

wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 "$secs"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "services: $name did not come up within ${secs}s" >&2; return 1
}

if ! pg_isready -q -h "$PGH" -p "$PGP"; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  else
    echo "services: PostgreSQL is not reachable at $PGH:$PGP and is not installed here." >&2
    echo "  Install it (apt-get install postgresql) or run: docker compose -f docker/compose.yml up -d postgres rabbitmq" >&2
    exit 1
  fi
  wait_for PostgreSQL 60 pg_isready -q -h "$PGH" -p "$PGP"
fi

if ! psql -h "$PGH" -p "$PGP" -U "$PGU" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PGDB'" | grep -q 1; then
  echo "services: creating database $PGDB"
  psql -h "$PGH" -p "$PGP" -U "$PGU" -d postgres -qc "CREATE DATABASE \"$PGDB\""
fi

amqp_up() { node -e 'const n=require("net").connect(+process.argv[2],process.argv[1]);n.on("connect",()=>process.exit(0));n.on("error",()=>process.exit(1))' "$1" "$2"; }
AMQPURL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672}"
read -r MQH MQP <<<"$(node -e 'const u=new URL(process.argv[1]);console.log(u.hostname+" "+(u.port||5672))' "$AMQPURL")"
if ! amqp_up "$MQH" "$MQP" || { command -v rabbitmqctl >/dev/null && ! rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1; }; then
  if command -v rabbitmq-server >/dev/null; then
    if ! rabbitmqctl -q status >/dev/null 2>&1; then
      echo "services: starting RabbitMQ"
      rabbitmq-server -detached || true
    else
      echo "services: starting the RabbitMQ application"
      rabbitmqctl -q start_app || true
    fi
    # await_startup fails at once until the node has registered: poll it.
    wait_for RabbitMQ 90 rabbitmqctl -q await_startup --timeout 5
  else
    echo "services: RabbitMQ is not reachable at $MQH:$MQP and is not installed here." >&2
    echo "  Install it (apt-get install rabbitmq-server) or run: docker compose -f docker/compose.yml up -d postgres rabbitmq" >&2
    exit 1
  fi
fi
wait_for "RabbitMQ port" 60 amqp_up "$MQH" "$MQP"
# The admin API and console read per-queue ready/unacked counts from the management plugin's HTTP
# API (they fall back to AMQP without it). Enabled once on a local broker; the setting persists.
if command -v rabbitmq-plugins >/dev/null && ! amqp_up 127.0.0.1 15672; then
  echo "services: enabling the RabbitMQ management plugin"
  rabbitmq-plugins -q enable rabbitmq_management >/dev/null || echo "services: could not enable rabbitmq_management; queue figures come from AMQP" >&2
fi
echo "services: PostgreSQL and RabbitMQ are up"
