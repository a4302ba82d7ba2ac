# nodenet.cni — entry points. Everything needs root (network namespaces, apt).
#
#   make demo    set up, then install the plugins and run two pods on a bridge
#   make test    set up, then pytest + ansible-test sanity + ansible-lint

.PHONY: setup test demo unit integration pytest sanity lint

setup:
	bash scripts/setup.sh

test: setup
	bash scripts/test.sh

demo: setup
	bash scripts/demo.sh

pytest: setup
	bash scripts/test.sh pytest

unit: setup
	bash scripts/test.sh unit

integration: setup
	bash scripts/test.sh integration

sanity: setup
	bash scripts/test.sh sanity

lint: setup
	bash scripts/test.sh lint
