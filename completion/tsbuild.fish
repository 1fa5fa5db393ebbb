# fish completion for tsbuild. Save it as ~/.config/fish/completions/tsbuild.fish, or:
# tsbuild completion fish | source
function __tsbuild_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l out ($tokens[1] __complete $tokens[2..-1] "$cur" 2>/dev/null)
    switch "$out[1]"
        case files
            __fish_complete_path "$cur"
        case dirs
            __fish_complete_directories "$cur"
        case words
            printf '%s\n' $out[2..-1]
    end
end
complete -c tsbuild -f -a '(__tsbuild_complete)'
