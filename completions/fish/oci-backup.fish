# fish completion for oci-backup; generated, do not edit.
complete -c oci-backup -l output -s o -r -a '(__fish_complete_directories)' -d 'Back up into DIR, an existing directory: one OCI layout per repository.'
complete -c oci-backup -l plain-http -d 'Speak plain HTTP to registries instead of HTTPS.'
complete -c oci-backup -l jobs -s j -x -d 'Transfer up to N blobs at once (default 4).'
complete -c oci-backup -l quiet -s q -d 'Print errors only.'
complete -c oci-backup -l help -s h -d 'Print help and exit.'
complete -c oci-backup -l version -s V -d 'Print the version and exit.'
