# fish completion for oci-unpack; generated, do not edit.
complete -c oci-unpack -l directory -s C -r -a '(__fish_complete_directories)' -d 'Unpack into DIR (default: the current directory), or write the layout stream to stdout with \'-\'.'
complete -c oci-unpack -l quiet -s q -d 'Print errors only.'
complete -c oci-unpack -l help -s h -d 'Print help and exit.'
complete -c oci-unpack -l version -s V -d 'Print the version and exit.'
