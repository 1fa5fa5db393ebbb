# bash completion for tsbuild. Load it with: source <(tsbuild completion bash)
# or save it as /etc/bash_completion.d/tsbuild.
_tsbuild() {
    local line=${COMP_LINE:0:COMP_POINT} cur w prefix
    local -a words out
    read -ra words <<< "$line"
    # The words before the cursor, and the one under it (empty after a space).
    if [[ ${#words[@]} -le 1 || $line =~ [[:space:]]$ ]]; then cur=''; words+=(''); else cur=${words[-1]}; fi
    mapfile -t out < <("${words[0]/#\~/$HOME}" __complete "${words[@]:1}" 2>/dev/null)
    COMPREPLY=()
    case ${out[0]} in
        files) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
        dirs) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
        words) for w in "${out[@]:1}"; do COMPREPLY+=("${w%%$'\t'*}"); done ;;
    esac
    # bash's own current word starts after the last ':' or '=' (COMP_WORDBREAKS).
    if [[ $cur == *[:=]* ]]; then
        prefix=${cur%"${cur##*[:=]}"}
        COMPREPLY=("${COMPREPLY[@]#"$prefix"}")
    fi
}
complete -F _tsbuild tsbuild
