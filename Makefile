# ocipipe: `make demo` runs the tools on a built-in demo, `make test` runs every test.
# Both install the Debian packages they need (docker-registry, skopeo, ...) when run as
# root, and say what to install otherwise.

CARGO ?= cargo
PREFIX ?= /usr/local
TOOLS := oci-fetch oci-push oci-backup oci-restore oci-pack oci-unpack
# command:package pairs the tests and the demo need.
NEEDS := docker-registry:docker-registry skopeo:skopeo htpasswd:apache2-utils \
         openssl:openssl curl:curl python3:python3 /usr/bin/time:time \
         script:bsdutils

.PHONY: all build test demo bench deps generate install clean

all: build

build:
	$(CARGO) build --release --locked

deps:
	@missing=""; for pair in $(NEEDS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	/usr/bin/python3 -c 'import cryptography' 2>/dev/null || missing="$$missing python3-cryptography"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing packages:$$missing (install them with: sudo apt-get install$$missing)" >&2; exit 1; \
	  fi; \
	fi

test: deps
	$(CARGO) test --locked --all-targets

demo: deps build
	@BIN=target/release tests/support/demo.sh

# Writes the man pages and completion scripts from the flag definitions.
generate: build
	@mkdir -p man completions/bash completions/zsh completions/fish
	@for t in $(TOOLS); do \
	  target/release/$$t --generate man > man/$$t.1; \
	  target/release/$$t --generate complete-bash > completions/bash/$$t; \
	  target/release/$$t --generate complete-zsh > completions/zsh/_$$t; \
	  target/release/$$t --generate complete-fish > completions/fish/$$t.fish; \
	done
	@echo "wrote man/ and completions/"

# Binaries, man pages, and completions where bash-completion, zsh and fish look for them.
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	for t in $(TOOLS); do install -m 755 target/release/$$t $(DESTDIR)$(PREFIX)/bin/; \
	  install -m 644 man/$$t.1 $(DESTDIR)$(PREFIX)/share/man/man1/; \
	  install -m 644 completions/bash/$$t $(DESTDIR)$(PREFIX)/share/bash-completion/completions/; \
	  install -m 644 completions/zsh/_$$t $(DESTDIR)$(PREFIX)/share/zsh/site-functions/; \
	  install -m 644 completions/fish/$$t.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/; done

clean:
	$(CARGO) clean

# Speed and memory against peers measured in the same run (see tests/support/bench.sh).
bench: deps build
	@BIN=target/release tests/support/bench.sh
