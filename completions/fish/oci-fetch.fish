# fish completion for oci-fetch; generated, do not edit.
complete -c oci-fetch -l output -s o -r -a '(__fish_complete_directories)' -d 'Write one OCI layout per repository under DIR (created if missing), or the layout stream to stdout with \'-\'.'
complete -c oci-fetch -l plain-http -d 'Speak plain HTTP to registries instead of HTTPS.'
complete -c oci-fetch -l jobs -s j -x -d 'Transfer up to N blobs at once (default 4).'
complete -c oci-fetch -l quiet -s q -d 'Print errors only.'
complete -c oci-fetch -l help -s h -d 'Print help and exit.'
complete -c oci-fetch -l version -s V -d 'Print the version and exit.'
