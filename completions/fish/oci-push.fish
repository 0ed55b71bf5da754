# fish completion for oci-push; generated, do not edit.
complete -c oci-push -l input -s i -r -F -d 'Push every OCI layout found under PATH, a directory, an archive file, or \'-\' (stdin).'
complete -c oci-push -l plain-http -d 'Speak plain HTTP to registries instead of HTTPS.'
complete -c oci-push -l jobs -s j -x -d 'Transfer up to N blobs at once (default 4).'
complete -c oci-push -l quiet -s q -d 'Print errors only.'
complete -c oci-push -l help -s h -d 'Print help and exit.'
complete -c oci-push -l version -s V -d 'Print the version and exit.'
