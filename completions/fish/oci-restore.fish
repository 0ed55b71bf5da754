# fish completion for oci-restore; generated, do not edit.
complete -c oci-restore -l input -s i -r -F -d 'Push every OCI layout found under PATH, a directory, an archive file, or \'-\' (stdin).'
complete -c oci-restore -l plain-http -d 'Speak plain HTTP to registries instead of HTTPS.'
complete -c oci-restore -l jobs -s j -x -d 'Transfer up to N blobs at once (default 4).'
complete -c oci-restore -l quiet -s q -d 'Print errors only.'
complete -c oci-restore -l help -s h -d 'Print help and exit.'
complete -c oci-restore -l version -s V -d 'Print the version and exit.'
