#!/usr/bin/env bash
# Stop the libvirtd and virtlogd that .ci/setup-libvirt.sh started (by their pid files).
for pidfile in /run/decl-ci/libvirtd.pid /run/decl-ci/virtlogd.pid; do
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
done
