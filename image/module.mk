# The bootable VM image (image/build.sh, image/smoke.sh; docs/image.md).
# `make image` needs root and the Debian archive; `make image-smoke` boots the
# result under qemu (TCG) and checks it over the serial console.
.PHONY: image image-smoke
image: $(BUILD)/hvgate $(BUILD)/hvgated
	./image/build.sh $(BUILD)

image-smoke:
	./image/smoke.sh all
