# scripts/dotnet-env.sh: sourced by the scripts that build .NET consumers of
# the adapter (the tests, the sample chat, the benchmark).  They reference the
# NuGet package SignalRBackplane.Postgres, not the project, so what is tested
# is the package a user gets.
#
# sbp_dotnet_pack DIR: packs the adapter into the local feed DIR/feed, once per
# run (a nested script reuses the feed its caller made), and exports
#   SBP_NUGET_FEED     the feed (Directory.Build.props adds it to restore)
#   SBP_NUGET_VERSION  <control file version>-local.<time>.<pid>: unique, so
#                      NuGet's global cache never serves an older build
# sbp_dotnet_unpack: removes this run's version from the global cache (call
# it from the EXIT trap of the script that packed).

sbp_dotnet_pack() {
	if [ -n "${SBP_NUGET_FEED:-}" ] && [ -d "$SBP_NUGET_FEED" ] && [ -n "${SBP_NUGET_VERSION:-}" ]; then
		SBP_NUGET_OWNER=0
		return 0
	fi
	local dir=$1 suffix
	suffix=local.$(date -u +%Y%m%d%H%M%S).$$
	mkdir -p "$dir/feed"
	dotnet pack clients/dotnet/src/SignalRBackplane.Postgres -c Release -o "$dir/feed" \
		-p:VersionSuffix="$suffix" >"$dir/pack.log" 2>&1 || { cat "$dir/pack.log"; return 1; }
	SBP_NUGET_FEED=$dir/feed
	SBP_NUGET_VERSION=$(sed -n "s/^default_version = '\(.*\)'/\1/p" signalr_bp.control)-$suffix
	SBP_NUGET_OWNER=1
	[ -f "$SBP_NUGET_FEED/SignalRBackplane.Postgres.$SBP_NUGET_VERSION.nupkg" ] || {
		echo "dotnet pack did not write SignalRBackplane.Postgres.$SBP_NUGET_VERSION.nupkg"; return 1; }
	export SBP_NUGET_FEED SBP_NUGET_VERSION
}

sbp_dotnet_unpack() {
	[ "${SBP_NUGET_OWNER:-0}" = 1 ] && [ -n "${SBP_NUGET_VERSION:-}" ] || return 0
	rm -rf "${NUGET_PACKAGES:-$HOME/.nuget/packages}/signalrbackplane.postgres/${SBP_NUGET_VERSION,,}"
}
