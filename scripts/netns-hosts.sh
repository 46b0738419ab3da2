#!/usr/bin/env bash
# Make 1-8 "hosts" as Linux network namespaces on this machine, for multi-host MPI tests (the recipe verified in
# research/mpi-netns.md). Needs root (CAP_NET_ADMIN) and iproute2 (ip, tc).
#
#   scripts/netns-hosts.sh up N [--prefix P] [--subnet 10.99.X] [--hostfile FILE] [--agent FILE]
#       Namespaces Ph1..PhN, each with eth0 = 10.99.X.i/24 and lo up, joined by veths Pv1..PvN to the bridge Pbr in
#       the root namespace (address 10.99.X.254, so mpirun itself reaches every host). Prints one host address a
#       line, or writes an Open MPI hostfile (`10.99.X.i slots=1`) with --hostfile. --agent writes a launch agent
#       for mpirun's --mca plm_rsh_agent: `AGENT HOST COMMAND…` runs COMMAND with `ip netns exec` in the namespace
#       of HOST (10.99.X.i, or the name Phi), with hostname Phi (own UTS namespace; Open MPI's session directory is
#       named after the hostname, and daemons sharing one crash now and then); the prefix and subnet are written in.
#       If up fails half-way it removes what it made; it refuses if anything with the prefix already exists.
#   scripts/netns-hosts.sh down [--prefix P]
#       Removes the namespaces, veths and bridge of prefix P; succeeds if they are already (partly) gone.
#   scripts/netns-hosts.sh shape I [--rate 200mbit] [--delay 5ms] [--burst 64kb] [--prefix P]
#       Shapes host I's link both ways: eth0 in Ph<I> (host -> bridge) and PvI in the root namespace
#       (bridge -> host). --rate: tbf; --delay: netem (needs CONFIG_NET_SCH_NETEM; said clearly if missing).
#   scripts/netns-hosts.sh unshape I [--prefix P]      removes that shaping (fine if there is none)
#   scripts/netns-hosts.sh subnet [--prefix P]         prints 10.99.X.0/24 (from the bridge if up, else derived)
#
# Prefix: 1-8 of [a-z0-9], starting with a letter (default dj), so names stay within Linux's 15 characters.
# Subnet: 10.99.X.0/24 with X = cksum(prefix) mod 250 unless --subnet 10.99.X (X in 0..255) is given; two
# prefixes that hash to the same X are refused at `up` (the subnet is already routed): pass --subnet then.
# Every name it creates or deletes starts with the prefix. Exit status: 0 ok, 1 failure, 2 usage.
#
# Use with (NET=$(scripts/netns-hosts.sh subnet --prefix P)):
#   mpirun --allow-run-as-root --bind-to none --mca plm_rsh_agent AGENT --mca btl tcp,self \
#     --mca btl_tcp_if_include $NET --mca oob_tcp_if_include $NET --hostfile HOSTFILE -n N PROGRAM
# --bind-to none: each "host's" orted believes it has the whole machine and binds its rank to core 0, so all ranks
# would share one core (an MLP step went from 2 ms to 31 ms). btl tcp,self: no shared memory between "hosts".
# Shaping this kernel can do: --rate (tbf). --delay needs netem, which is not built into every kernel.
set -eu

me=netns-hosts.sh
usage() {   # --help: the comment above, on stdout
    sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit 0
}
die() { echo "$me: $*" >&2; exit 1; }
bad() { echo "$me: $*" >&2; echo "usage: $me up N | down | shape I | unshape I | subnet  [options]  (--help for all)" >&2; exit 2; }

[ $# -ge 1 ] || bad "no command"
cmd=$1; shift
case $cmd in -h|--help|help) usage ;; up|down|shape|unshape|subnet) ;; *) bad "unknown command: $cmd" ;; esac

prefix=dj subnet_arg='' hostfile='' agent='' rate='' delay='' burst=64kb n='' index=''
while [ $# -gt 0 ]; do
    case $1 in
        --prefix|--subnet|--hostfile|--agent|--rate|--delay|--burst)
            [ $# -ge 2 ] || bad "$1 needs a value"
            case $1 in
                --prefix) prefix=$2 ;; --subnet) subnet_arg=$2 ;; --hostfile) hostfile=$2 ;; --agent) agent=$2 ;;
                --rate) rate=$2 ;; --delay) delay=$2 ;; --burst) burst=$2 ;;
            esac
            shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --subnet=*) subnet_arg=${1#*=}; shift ;;
        --hostfile=*) hostfile=${1#*=}; shift ;;
        --agent=*) agent=${1#*=}; shift ;;
        --rate=*) rate=${1#*=}; shift ;;
        --delay=*) delay=${1#*=}; shift ;;
        --burst=*) burst=${1#*=}; shift ;;
        -h|--help) usage ;;
        -*) bad "unknown option: $1" ;;
        *)
            case $cmd in
                up) [ -z "$n" ] || bad "extra argument: $1"; n=$1 ;;
                shape|unshape) [ -z "$index" ] || bad "extra argument: $1"; index=$1 ;;
                *) bad "extra argument: $1" ;;
            esac
            shift ;;
    esac
done

# Arguments first (a typo should say so even without root), then the machine.
[[ $prefix =~ ^[a-z][a-z0-9]{0,7}$ ]] || bad "--prefix must be 1-8 of [a-z0-9] starting with a letter, not '$prefix'"
in_1_8() { [[ $1 =~ ^[1-8]$ ]]; }
case $cmd in
    up)
        [ -n "$n" ] || bad "up needs the number of hosts"
        in_1_8 "$n" || die "the number of hosts must be 1..8, not '$n'" ;;
    shape|unshape)
        [ -n "$index" ] || bad "$cmd needs a host index"
        in_1_8 "$index" || die "the host index must be 1..8, not '$index'" ;;
esac
[ "$cmd" = up ] || [ -z "$hostfile$agent$subnet_arg" ] || bad "--hostfile, --agent and --subnet go with up"
[ "$cmd" = shape ] || [ -z "$rate$delay" ] || bad "--rate and --delay go with shape"
if [ "$cmd" = shape ] && [ -z "$rate$delay" ]; then bad "shape needs --rate and/or --delay"; fi

if [ -n "$subnet_arg" ]; then
    [[ $subnet_arg =~ ^10\.99\.([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])$ ]] ||
        bad "--subnet must be 10.99.X with X in 0..255, not '$subnet_arg'"
    net=$subnet_arg
else
    net=10.99.$(( $(printf %s "$prefix" | cksum | cut -d' ' -f1) % 250 ))
fi

command -v ip >/dev/null 2>&1 || die "needs the ip command: install iproute2 (apt-get install iproute2)"
command -v tc >/dev/null 2>&1 || die "needs the tc command: install iproute2 (apt-get install iproute2)"
[ "$cmd" != up ] || [ -z "$agent" ] || command -v unshare >/dev/null 2>&1 ||
    die "the --agent needs unshare: install util-linux (apt-get install util-linux)"
[ "$(id -u)" -eq 0 ] || die "needs root (CAP_NET_ADMIN) to make network namespaces; run it as root or with sudo"

br=${prefix}br
ns() { echo "${prefix}h$1"; }
veth() { echo "${prefix}v$1"; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }
ns_exists() { [ -e "/var/run/netns/$1" ] || ip netns list 2>/dev/null | cut -d' ' -f1 | grep -qx "$1"; }
# Namespaces of this prefix: Ph1..Ph8 plus any other Ph<digits> (so down also clears what a larger run left).
our_namespaces() {
    { for i in 1 2 3 4 5 6 7 8; do ns_exists "$(ns "$i")" && ns "$i"; done
      ip netns list 2>/dev/null | cut -d' ' -f1 | grep -Ex "${prefix}h[0-9]+" || true; } | sort -u
}

# probe NETNS ADDR: true when ADDR answers from NETNS ("" = root namespace): a connection to the discard port,
# refused or not, means the path and the neighbour entries work; no route, or no answer in 1 s, does not.
probe() {
    local out
    if [ -n "$1" ]; then
        out=$(ip netns exec "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1) && return 0
    else
        out=$(timeout 1 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1) && return 0
    fi
    case $out in *refused*) return 0 ;; esac
    return 1
}

do_down() {
    local name i
    # Veths first: deleting one end deletes the pair at once, whereas the kernel tears a deleted namespace's
    # devices down later (asynchronously), so an `up` right after would find Pv1 still there.
    for i in 1 2 3 4 5 6 7 8; do
        if link_exists "$(veth "$i")"; then ip link del "$(veth "$i")" 2>/dev/null || true; fi
    done
    for name in $(our_namespaces); do
        ip netns del "$name" 2>/dev/null || true
    done
    if link_exists "$br"; then ip link del "$br" 2>/dev/null || true; fi
    # What could not be removed is a failure.
    local left
    left=$( { our_namespaces; for i in 1 2 3 4 5 6 7 8; do link_exists "$(veth "$i")" && veth "$i"; done
              link_exists "$br" && echo "$br"; } | tr '\n' ' ' || true)
    [ -z "$left" ] || die "could not remove: $left"
}

do_up() {
    local i existing
    existing=$( { our_namespaces; link_exists "$br" && echo "$br"
                  for i in 1 2 3 4 5 6 7 8; do link_exists "$(veth "$i")" && veth "$i"; done; } | tr '\n' ' ' || true)
    [ -z "$existing" ] || die "prefix '$prefix' is already in use ($existing); run '$me down --prefix $prefix' first"
    if [ -n "$(ip -4 route show to "$net.0/24")$(ip -4 -o addr show to "$net.0/24")" ]; then
        die "subnet $net.0/24 is already routed here (another prefix?); pass --subnet 10.99.X with a free X"
    fi

    # shellcheck disable=SC2154  # rc is set inside the trap
    trap 'rc=$?; if [ $rc -ne 0 ]; then echo "$me: up failed; removing what it made" >&2; do_down || true; fi; exit $rc' EXIT
    trap 'exit 130' INT TERM

    # STP off and forward delay 0: ports forward as soon as they are up (no listening/learning phase).
    ip link add name "$br" type bridge stp_state 0 forward_delay 0
    ip addr add "$net.254/24" dev "$br"
    ip link set "$br" up
    for i in $(seq 1 "$n"); do
        ip netns add "$(ns "$i")"
        ip link add name "$(veth "$i")" type veth peer name eth0 netns "$(ns "$i")"
        ip link set "$(veth "$i")" master "$br"
        ip link set "$(veth "$i")" up
        ip -n "$(ns "$i")" addr add "$net.$i/24" dev eth0
        ip -n "$(ns "$i")" link set lo up
        ip -n "$(ns "$i")" link set eth0 up
    done
    # Wait until every link is up and answers both ways, so the first mpirun does not race the new links: eth0
    # with carrier, the bridge port forwarding, and a TCP probe each way (a reset from a closed port counts; it
    # also fills both neighbour tables). No ping needed.
    local ok _
    for i in $(seq 1 "$n"); do
        ok=
        for _ in $(seq 1 50); do
            if ip -n "$(ns "$i")" link show dev eth0 | grep -q 'state UP' &&
               bridge link show dev "$(veth "$i")" | grep -q 'state forwarding' &&
               probe "" "$net.$i" && probe "$(ns "$i")" "$net.254"; then
                ok=1; break
            fi
            sleep 0.1
        done
        [ -n "$ok" ] || die "host $i ($net.$i in $(ns "$i")) is not reachable after 5 s"
    done

    if [ -n "$agent" ]; then
        cat > "$agent" <<EOF
#!/bin/sh
# Launch agent for Open MPI (--mca plm_rsh_agent), written by scripts/netns-hosts.sh for prefix '$prefix',
# subnet $net.0/24. Open MPI calls it as AGENT HOST COMMAND... (like ssh): run COMMAND in HOST's namespace.
[ \$# -ge 2 ] || { echo "\$0: usage: \$0 HOST COMMAND..." >&2; exit 2; }
host=\$1; shift
case \$host in
    $net.[1-8]) i=\${host##*.} ;;
    ${prefix}h[1-8]) i=\${host#${prefix}h} ;;
    *) echo "\$0: '\$host' is not a host of prefix $prefix ($net.1-8 or ${prefix}h1-8)" >&2; exit 1 ;;
esac
# Its own UTS namespace with hostname ${prefix}h<i>, as a real host would have: Open MPI names its session directory
# (/tmp/ompi.HOSTNAME.UID/…, with the hwloc topology file mpirun and every orted write) after the hostname, and
# with one shared hostname the daemons race on it (orted segfaults in hwloc_shmem_topology_write, or
# "mkdir … File exists" in session_dir.c, in about 1 run of 6).
exec ip netns exec "${prefix}h\$i" unshare --uts sh -c 'hostname "\$0" && exec sh -c "\$1"' "${prefix}h\$i" "\$*"
EOF
        chmod +x "$agent"
    fi
    if [ -n "$hostfile" ]; then
        : > "$hostfile"
        for i in $(seq 1 "$n"); do echo "$net.$i slots=1" >> "$hostfile"; done
    else
        for i in $(seq 1 "$n"); do echo "$net.$i"; done
    fi
    trap - EXIT INT TERM
}

do_shape() {
    local h v dev where run
    h=$(ns "$index"); v=$(veth "$index")
    ns_exists "$h" || die "host $index ($h) is not up"
    if [ -n "$delay" ]; then
        # Probe netem on the root-side veth first, so that on a kernel without it nothing is changed.
        if ! tc qdisc replace dev "$v" root handle 1: netem delay "$delay" 2>/dev/null; then
            tc qdisc del dev "$v" root 2>/dev/null || true
            die "--delay needs the netem qdisc, which this kernel lacks (CONFIG_NET_SCH_NETEM); use --rate alone"
        fi
    fi
    for where in root ns; do
        if [ $where = root ]; then dev=$v; run=; else dev=eth0; run="ip netns exec $h"; fi
        $run tc qdisc del dev "$dev" root 2>/dev/null || true
        if [ -n "$delay" ] && [ -n "$rate" ]; then   # netem delay, with tbf under it for the rate
            $run tc qdisc add dev "$dev" root handle 1: netem delay "$delay" limit 100000
            $run tc qdisc add dev "$dev" parent 1:1 handle 10: tbf rate "$rate" burst "$burst" latency 200ms
        elif [ -n "$delay" ]; then
            $run tc qdisc add dev "$dev" root handle 1: netem delay "$delay" limit 100000
        else
            $run tc qdisc add dev "$dev" root handle 1: tbf rate "$rate" burst "$burst" latency 200ms
        fi
    done
    echo "$me: host $index ($h): ${rate:+rate $rate }${delay:+delay $delay }both ways" >&2
}

do_unshape() {
    local h v
    h=$(ns "$index"); v=$(veth "$index")
    ns_exists "$h" || die "host $index ($h) is not up"
    # Deleting the root qdisc puts the default back; it fails only when there was nothing to delete.
    tc qdisc del dev "$v" root 2>/dev/null || true
    ip netns exec "$h" tc qdisc del dev eth0 root 2>/dev/null || true
    if tc qdisc show dev "$v" | grep -Eq 'tbf|netem' || ip netns exec "$h" tc qdisc show dev eth0 | grep -Eq 'tbf|netem'; then
        die "could not remove the shaping of host $index"
    fi
}

case $cmd in
    up) do_up ;;
    down) do_down ;;
    shape) do_shape ;;
    unshape) do_unshape ;;
    subnet)
        a=$(ip -4 -o addr show dev "$br" 2>/dev/null | awk '{print $4}' | head -1)
        if [ -n "$a" ]; then echo "${a%.*}.0/24"; else echo "$net.0/24"; fi ;;
esac
