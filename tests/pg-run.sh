#!/bin/sh
# Run one test binary against the PostgreSQL cluster of script/test; skip
# (77) when there is none, so a plain ctest on a machine without it passes.
if [ -z "$THOU_TEST_PG_URL" ]; then
  echo "THOU_TEST_PG_URL is not set: no PostgreSQL cluster (script/test starts one); skipped"
  exit 77
fi
exec "$@"
