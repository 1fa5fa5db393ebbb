#!/bin/sh
cat "${GREETING_FILE:-/app/greeting.txt}"
cat /app/build-info.txt
