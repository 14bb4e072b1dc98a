# bash completion for cmkfs and cmkfs-kmsd.
#
# Commands, options and the choices of an option (`--fs ext4|xfs`) come
# from the program's own help, so they cannot fall behind it; volumes and
# key files complete as files, mount points as directories.
# Installed as share/bash-completion/completions/cmkfs (and cmkfs-kmsd).

# From help text on stdin: _cmkfs_opts prints its options, _cmkfs_choices
# OPT the a|b|c choices of OPT.
_cmkfs_opts() {
	grep -oE '(^|[[ ,|])--[a-z][a-z0-9-]*' | sed 's/^[[ ,|]//' | sort -u
}

_cmkfs_choices() {
	grep -oE -- "$1 [a-z0-9_-]+(\|[a-z0-9_-]+)+" | head -n1 |
		cut -d' ' -f2 | tr '|' ' '
}

_cmkfs() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local prog=${COMP_WORDS[0]} cmd help choices i n=0
	COMPREPLY=()
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "$("$prog" help 2> /dev/null |
			awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
			--help --version" -- "$cur"))
		return
	fi
	cmd=${COMP_WORDS[1]}
	help=$("$prog" help "$cmd" 2> /dev/null) || return
	case $prev in
	--*)
		choices=$(printf '%s\n' "$help" | _cmkfs_choices "$prev")
		if [ -n "$choices" ]; then
			COMPREPLY=($(compgen -W "$choices" -- "$cur"))
			return
		fi
		case $prev in
		--log | --policy | --kmip-cert | --kmip-key | --kmip-ca) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		--backing | --out | --build) COMPREPLY=($(compgen -d -- "$cur")); return ;;
		esac
		# An option followed by an argument in the help takes one.
		if printf '%s\n' "$help" | grep -qE -- "(^|[[ ])$prev [A-Z]"; then
			return
		fi
		;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(printf '%s\n' "$help" | _cmkfs_opts)" -- "$cur"))
		return
	fi
	# Which operand this is: words after the command, not options or
	# their arguments (a rough count is enough to tell file from dir).
	for ((i = 2; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*) case ${COMP_WORDS[i-1]} in --*) ;; *) n=$((n + 1)) ;; esac ;;
		esac
	done
	case $cmd in
	help) [ $n = 0 ] && COMPREPLY=($(compgen -W "$("$prog" help 2> /dev/null |
		awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')" -- "$cur")) ;;
	kms) [ $n = 0 ] && COMPREPLY=($(compgen -W "$(printf '%s\n' "$help" |
		sed -n 's/^.*cmkfs kms \([a-z|-]*\).*$/\1/p' | tr '|' ' ')" -- "$cur")) ;;
	mount) if [ $n = 1 ]; then COMPREPLY=($(compgen -d -- "$cur"))
		else COMPREPLY=($(compgen -f -- "$cur")); fi ;;
	umount) COMPREPLY=($(compgen -d -- "$cur") $(compgen -f -- "$cur")) ;;
	*) COMPREPLY=($(compgen -f -- "$cur")) ;;
	esac
}

_cmkfs_kmsd() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local help
	COMPREPLY=()
	help=$("${COMP_WORDS[0]}" --help 2> /dev/null) || return
	case $prev in
	--state) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--log) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(printf '%s\n' "$help" | _cmkfs_opts)" -- "$cur"))
	elif [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "serve init principal" -- "$cur"))
	elif [ "$prev" = principal ]; then
		COMPREPLY=($(compgen -W "add list remove" -- "$cur"))
	fi
}

complete -F _cmkfs -o filenames cmkfs
complete -F _cmkfs_kmsd -o filenames cmkfs-kmsd
