# Sourced by .ci/run: make /dev/kvm usable by libvirt's QEMU and start libvirtd.
# Where /dev/kvm exists with mode 0600 (no udev), every `virsh define` takes about 60 s
# because libvirt probes QEMU again each time: give it group kvm and mode 0660.
if [ -e /dev/kvm ]; then
  chgrp kvm /dev/kvm 2>/dev/null || true
  chmod 0660 /dev/kvm 2>/dev/null || true
fi
if ! virsh -c qemu:///system version --daemon >/dev/null 2>&1; then
  mkdir -p /run/decl-ci
  pgrep -x virtlogd >/dev/null || virtlogd -d -p /run/decl-ci/virtlogd.pid
  libvirtd -d -p /run/decl-ci/libvirtd.pid
  for _ in $(seq 1 60); do
    virsh -c qemu:///system version --daemon >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
virsh -c qemu:///system net-start default >/dev/null 2>&1 || true
