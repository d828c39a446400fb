# shellcheck shell=bash
# Image build for scripts/swarm-vm, sourced by it (not run on its own).
#
# Produces, in one cache directory per suite, keyed by the suite and the hash
# of this file and of initramfs-init (see image_key in swarm-vm):
#   vmlinuz       a stock Debian kernel (linux-image-amd64 of KERNEL_SUITE),
#                 extracted with dpkg -x, never installed on this machine
#   initrd.img    a busybox initramfs that loads virtio/ext4/9p modules and
#                 switch_roots into the root file system
#   rootfs.img    ext4 image (mkfs.ext4 -d, no loop mount) of a debootstrap
#                 minbase SUITE with docker.io, the kernel's modules and the
#                 busybox+socat tarball that the node imports as its only image
#   VERSION       what was built, for the record
#
# Suites (SUITE, set by swarm-vm from --suite / MT_VM_SUITE):
#   bookworm  Debian 12: docker.io 20.10, its own kernel (6.1), iptables-nft
#   forky     Debian testing: docker.io 28 (docker-cli named: docker.io only
#             recommends it), the kernel of trixie (6.12), iptables-nft.
#             bookworm's debootstrap has no forky script; forky is
#             bootstrapped with its sid script.
#
# Everything is built under a temporary directory and moved into place only
# when complete, so an interrupted build never leaves a half image in the cache.

BUILD_SUITE=${SUITE:-bookworm}
BUILD_MIRROR=${MT_VM_MIRROR:-http://deb.debian.org/debian}
BUILD_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# Packages of the node, common to every suite. docker.io brings
# containerd/runc/tini as dependencies; they are named so that a change in
# Debian's dependencies cannot drop them.
BUILD_PACKAGES_COMMON=docker.io,containerd,runc,iptables,iproute2,kmod,ipvsadm,busybox-static,procps,tcpdump,jq,conntrack,socat,util-linux
case $BUILD_SUITE in
bookworm)
	BUILD_PACKAGES=$BUILD_PACKAGES_COMMON,tini
	BUILD_SCRIPT="" # debootstrap's own
	KERNEL_SUITE=""   # the build machine's own apt lists (bookworm)
	;;
forky)
	BUILD_PACKAGES=$BUILD_PACKAGES_COMMON,docker-cli,tini-static
	BUILD_SCRIPT=/usr/share/debootstrap/scripts/sid
	KERNEL_SUITE=trixie
	;;
*) die "unknown suite $BUILD_SUITE (bookworm, forky)" ;;
esac
# Modules the initramfs loads before it can see the root disk and the share.
INITRD_MODULES="virtio_pci virtio_blk ext4 9pnet_virtio 9p"
# Size of the sparse root image; -snapshot keeps the writes of a boot elsewhere.
ROOTFS_SIZE=${MT_VM_ROOTFS_SIZE:-3G}

# build_image DEST: build the three files into DEST (which must not exist).
build_image() {
	local dest=$1 tmp kver
	tmp=$(mktemp -d /var/tmp/meshtrace-vm-build.XXXXXX)
	BUILD_TMP=$tmp # removed by build_cleanup, also from swarm-vm's exit trap

	phase "kernel"
	kver=$(build_kernel "$tmp/kernel")
	phase "rootfs (debootstrap $BUILD_SUITE)"
	build_rootfs "$tmp/rootfs" "$tmp/kernel" "$kver"
	phase "container image tarball"
	build_container_tar "$tmp/rootfs" "$tmp/rootfs/opt/mt/image.tar"
	phase "initramfs"
	build_initrd "$tmp/initrd" "$tmp/kernel" "$kver" "$tmp/rootfs/bin/busybox" "$tmp/out/initrd.img"
	phase "ext4 image"
	mkdir -p "$tmp/out"
	cp "$tmp/kernel/boot/vmlinuz-$kver" "$tmp/out/vmlinuz"
	truncate -s "$ROOTFS_SIZE" "$tmp/out/rootfs.img"
	mkfs.ext4 -q -F -L mtroot -d "$tmp/rootfs" "$tmp/out/rootfs.img"
	{
		echo "kernel: $kver"
		echo "suite: $BUILD_SUITE"
		echo "kernel suite: ${KERNEL_SUITE:-$BUILD_SUITE}"
		# shellcheck disable=SC2016 # ${Version} is dpkg-query's, not ours
		echo "docker.io: $(chroot "$tmp/rootfs" dpkg-query -W -f '${Version}' docker.io)"
		echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$tmp/out/VERSION"
	mkdir -p "$(dirname "$dest")"
	mv "$tmp/out" "$dest"
	build_cleanup
}

# build_cleanup: remove the build's temporary directory, if any.
build_cleanup() {
	local tmp=${BUILD_TMP:-}
	[[ -n $tmp ]] || return 0
	BUILD_TMP=""
	# debootstrap may leave /proc or /sys mounted in the chroot on failure.
	local m
	for m in proc sys dev/pts dev; do
		mountpoint -q "$tmp/rootfs/$m" 2>/dev/null && umount -l "$tmp/rootfs/$m"
	done
	rm -rf "$tmp"
}

# build_kernel DIR: download the current linux-image-<abi>-amd64 of the
# kernel suite and extract it into DIR (its modules in DIR/lib/modules, also
# when the package puts them under usr/); print the kernel release.
build_kernel() {
	local dir=$1 pkg deb kver
	mkdir -p "$dir"
	if [[ -n $KERNEL_SUITE ]]; then
		build_apt_lists "$dir/apt" "$KERNEL_SUITE"
		APT_OPTS=("${BUILD_APT_OPTS[@]}")
	else
		APT_OPTS=()
	fi
	pkg=$(build_kernel_package)
	if [[ -z $pkg && -z $KERNEL_SUITE ]]; then
		apt-get update -qq >&2 # a fresh machine has no package lists yet
		pkg=$(build_kernel_package)
	fi
	[[ -n $pkg ]] || die "apt-cache depends linux-image-amd64 names no kernel"
	(cd "$dir" && apt-get "${APT_OPTS[@]}" download -q "$pkg" >&2 2>/dev/null) || die "apt-get download $pkg failed"
	deb=$(ls "$dir"/linux-image-*.deb)
	dpkg -x "$deb" "$dir"
	rm -rf "$deb" "$dir/apt"
	if [[ -d $dir/usr/lib/modules && ! -d $dir/lib/modules ]]; then
		mkdir -p "$dir/lib"
		mv "$dir/usr/lib/modules" "$dir/lib/modules"
	fi
	kver=$(ls "$dir/lib/modules")
	[[ -f $dir/boot/vmlinuz-$kver ]] || die "no vmlinuz-$kver in $pkg"
	depmod -b "$dir" "$kver"
	echo "$kver"
}

# build_kernel_package: the package linux-image-amd64 currently depends on.
build_kernel_package() {
	apt-cache "${APT_OPTS[@]}" depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}'
}

# build_apt_lists DIR SUITE: package lists of SUITE in a private apt state
# under DIR (the build machine's sources and lists are left alone), for
# apt-cache and apt-get download through BUILD_APT_OPTS. apt verifies the
# suite's InRelease against the Debian archive keyring, or fails. The build
# machine's apt.conf.d still applies (how it reaches the mirror).
build_apt_lists() {
	local dir=$1 suite=$2
	mkdir -p "$dir"/{lists/partial,cache/archives/partial,parts,prefs}
	: >"$dir/status"
	echo "deb [signed-by=$BUILD_KEYRING] $BUILD_MIRROR $suite main" >"$dir/sources.list"
	BUILD_APT_OPTS=(-o "Dir::State=$dir" -o "Dir::State::Lists=$dir/lists"
		-o "Dir::State::status=$dir/status" -o "Dir::Cache=$dir/cache"
		-o "Dir::Etc::SourceList=$dir/sources.list" -o "Dir::Etc::SourceParts=$dir/parts"
		-o "Dir::Etc::Preferences=$dir/prefs/none"
		-o "Dir::Etc::PreferencesParts=$dir/prefs" -o "APT::Sandbox::User=root"
		-o "Acquire::Languages=none")
	apt-get "${BUILD_APT_OPTS[@]}" update -qq >&2 || die "apt-get update of $suite failed (InRelease not verified?)"
}

# build_rootfs DIR KERNELDIR KVER: debootstrap the node and add the kernel's modules.
build_rootfs() {
	local dir=$1 kdir=$2 kver=$3
	# shellcheck disable=SC2086 # BUILD_SCRIPT is empty or one path
	debootstrap --variant=minbase --keyring="$BUILD_KEYRING" --include="$BUILD_PACKAGES" \
		"$BUILD_SUITE" "$dir" "$BUILD_MIRROR" $BUILD_SCRIPT >"$dir.log" 2>&1 ||
		{ tail -20 "$dir.log" >&2; die "debootstrap failed (log above)"; }
	# The suite's InRelease, checked by debootstrap against the keyring: say
	# so, or stop (never build from an unverified suite).
	grep -q '^I: Valid Release signature' "$dir.log" ||
		die "debootstrap did not verify $BUILD_SUITE's Release signature (see $dir.log)"
	build_no_stray_daemons "$dir"
	mkdir -p "$dir/lib/modules" "$dir/share" "$dir/opt/mt"
	cp -a "$kdir/lib/modules/$kver" "$dir/lib/modules/"
	depmod -b "$dir" "$kver"
	echo swarm-node0 >"$dir/etc/hostname"
	printf '127.0.0.1 localhost\n192.0.2.10 swarm-node0\n' >"$dir/etc/hosts"
	# Nothing inside the VM may reach out; an empty resolv.conf keeps dockerd
	# from copying the build machine's resolvers into containers.
	: >"$dir/etc/resolv.conf"
	rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/usr/share/doc" "$dir/usr/share/man"
}

# build_no_stray_daemons DIR: a package's postinst could have started a daemon
# inside the chroot (invoke-rc.d normally refuses). Fail loudly rather than leave
# one running on this machine or kill something we did not start.
build_no_stray_daemons() {
	local dir=$1 p root stray=""
	root=$(readlink -f "$dir")
	for p in /proc/[0-9]*; do
		[[ $(readlink "$p/root" 2>/dev/null) == "$root" ]] && stray+=" ${p#/proc/}"
	done
	[[ -z $stray ]] || die "processes running inside the build chroot:$stray (left running; kill them by pid)"
}

# build_container_tar ROOTFS OUT: the root of the services' image: static
# busybox (httpd, wget, nc, sh) plus socat and its libraries (busybox has no
# UDP server), and /www for httpd.
build_container_tar() {
	local rootfs=$1 out=$2 img lib applet
	img=$(mktemp -d /var/tmp/meshtrace-vm-img.XXXXXX)
	mkdir -p "$img"/{bin,etc,www,tmp,lib64,proc,sys,dev}
	cp "$rootfs/bin/busybox" "$img/bin/busybox"
	for applet in $(chroot "$rootfs" /bin/busybox --list); do
		[[ -e $img/bin/$applet ]] || ln -s busybox "$img/bin/$applet"
	done
	cp "$rootfs/usr/bin/socat" "$img/bin/socat"
	# socat's shared libraries, resolved inside the rootfs.
	for lib in $(chroot "$rootfs" ldd /usr/bin/socat | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
		mkdir -p "$img$(dirname "$lib")"
		cp -L "$rootfs$lib" "$img$lib"
	done
	printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$img/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$img/etc/group"
	echo "meshtrace swarm-vm" >"$img/www/index.html"
	tar -C "$img" -cf "$out" .
	rm -rf "$img"
}

# build_initrd DIR KERNELDIR KVER BUSYBOX OUT: BUSYBOX (the rootfs's static
# one: the build machine's may be dynamic) + the modules in INITRD_MODULES
# (with their dependencies, in load order) + initramfs-init as /init.
build_initrd() {
	local dir=$1 kdir=$2 kver=$3 busybox=$4 out=$5 m ko name
	mkdir -p "$dir"/{bin,dev,proc,sys,newroot,lib/mod} "$(dirname "$out")"
	cp "$busybox" "$dir/bin/busybox"
	cp "$VM_DIR/initramfs-init" "$dir/init"
	chmod 755 "$dir/init"
	: >"$dir/lib/mod/order"
	for m in $INITRD_MODULES; do
		modprobe -d "$kdir" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}' |
			while read -r ko; do
				name=$(basename "$ko")
				name=${name%.xz} name=${name%.zst}
				if ! grep -qx "$name" "$dir/lib/mod/order"; then
					# busybox insmod takes plain .ko files only
					case $ko in
					*.xz) xz -dc "$ko" >"$dir/lib/mod/$name" ;;
					*.zst) zstd -qdc "$ko" >"$dir/lib/mod/$name" ;;
					*) cp "$ko" "$dir/lib/mod/$name" ;;
					esac
					echo "$name" >>"$dir/lib/mod/order"
				fi
			done
	done
	(cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
}
