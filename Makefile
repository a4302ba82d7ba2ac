# nodenet.cni — entry points. Everything needs root (network namespaces, apt).
#
#   make demo    set up, then a lab of 3 nodes, site.yml, verify.yml (pod-to-pod across nodes)
#   make test    set up, then pytest + ansible-test sanity + ansible-lint + molecule

.PHONY: setup test demo demo-plugins unit integration pytest sanity lint molecule

setup:
	bash scripts/setup.sh

test: setup
	bash scripts/test.sh

demo: setup
	bash scripts/lab_demo.sh

demo-plugins: setup
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

molecule: setup
	bash scripts/test.sh molecule
