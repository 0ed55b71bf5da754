# fish completion for oci-pack; generated, do not edit.
complete -c oci-pack -l output -s o -r -F -d 'Write the compressed tar to FILE (default: stdout).'
complete -c oci-pack -l quiet -s q -d 'Print errors only.'
complete -c oci-pack -l help -s h -d 'Print help and exit.'
complete -c oci-pack -l version -s V -d 'Print the version and exit.'
