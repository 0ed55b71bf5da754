# fish completion for oci-backup; generated, do not edit.
complete -c oci-backup -l output -s o -r -F -d 'Back up into PATH: a directory if it is an existing one, else a gzip-compressed tar (\'-\' for stdout).'
complete -c oci-backup -l input -s i -r -F -d 'Read references from FILE (\'-\' for stdin), one per line, instead of the command line.'
complete -c oci-backup -l plain-http -d 'Speak plain HTTP to registries instead of HTTPS.'
complete -c oci-backup -l jobs -s j -x -d 'Transfer up to N blobs at once (default 4).'
complete -c oci-backup -l quiet -s q -d 'Print errors only.'
complete -c oci-backup -l help -s h -d 'Print help and exit.'
complete -c oci-backup -l version -s V -d 'Print the version and exit.'
