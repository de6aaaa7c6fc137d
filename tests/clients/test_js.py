"""The browser client (clients/js): its types are generated from the document the app
serves, its unit tests (vitest) and type check (tsc) pass, and it builds.

Like the React example's suite, these need Node: skipped without it, failed under CI=true.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from app.gateways.shop_webhooks import VERIFY_EXAMPLES
from devstack.demo import STRIPE_JS_RELEASE_TRAIN
from tests.clients import js_package
from tests.clients.js_package import CLIENT, ROOT, SCHEMA

VERIFY_NODE = VERIFY_EXAMPLES["node"]


@pytest.fixture(scope="module")
def npm() -> str:
    return js_package.require_node()


class TestTypes:
    def test_the_dump_command_writes_the_served_document(self, client: Any, tmp_path: Path):
        target = tmp_path / "openapi.json"
        subprocess.run([sys.executable, "-m", "app.api", str(target)], cwd=ROOT, check=True)
        served = client.get("/openapi.json").get_json()
        assert json.loads(target.read_text()) == served
        # The same order too: the generated types follow the document's order.
        assert list(json.loads(target.read_text())["paths"]) == list(served["paths"])

    def test_the_checked_in_types_are_the_served_documents(
        self, client: Any, npm: str, tmp_path: Path
    ):
        served = tmp_path / "openapi.json"
        served.write_bytes(client.get("/openapi.json").data)
        generated = tmp_path / "schema.ts"
        js_package.install(npm)
        js_package.run([npm, "run", "types", "--", str(served), "-o", str(generated)])
        assert generated.read_text() == SCHEMA.read_text(), (
            "clients/js/src/schema.ts differs from the served /openapi.json: run `make js-types`"
        )


class TestStripeJs:
    def test_the_demo_serves_the_release_stripe_js_package_expects(self, npm: str):
        js_package.install(npm)
        pure = (CLIENT / "node_modules" / "@stripe" / "stripe-js" / "dist" / "pure.js").read_text()
        match = re.search(r"var RELEASE_TRAIN = '([a-z]+)';", pure)
        assert match and match.group(1) == STRIPE_JS_RELEASE_TRAIN
        # The example pins the same @stripe/stripe-js as the client.
        versions = [
            json.loads((folder / "package.json").read_text())
            for folder in (CLIENT, ROOT / "examples" / "react-shop")
        ]
        assert (
            versions[0]["devDependencies"]["@stripe/stripe-js"]
            == (versions[1]["dependencies"]["@stripe/stripe-js"])
        )


class TestPackage:
    def test_type_check_passes(self, npm: str):
        js_package.npx(npm, "tsc", "-p", "tsconfig.json", "--noEmit")

    def test_unit_tests_pass(self, npm: str):
        output = js_package.npx(npm, "vitest", "run", "--reporter", "dot")
        assert " passed" in output

    def test_builds_an_es_module_with_its_declarations(self, npm: str):
        dist = js_package.build(npm)
        for entry in ("index", "react"):
            assert (dist / f"{entry}.js").is_file() and (dist / f"{entry}.d.ts").is_file()
        exports = json.loads((CLIENT / "package.json").read_text())["exports"]
        assert exports["./react"]["import"] == "./dist/react.js"


# docs/integration.md's code blocks: a frontend file starts with a comment naming it.
CODE_BLOCK = re.compile(r"^```(js|jsx|ts|tsx)\n(.*?)^```", re.S | re.M)
FILE_NAME = re.compile(r"// (src/[\w/.-]+\.(?:js|jsx|ts|tsx))\n")
# What Vite declares for import.meta.env (the snippets read the example's variables).
VITE_ENV = """interface ImportMetaEnv {
  readonly VITE_API_URL: string;
  readonly VITE_STRIPE_PUBLISHABLE_KEY: string;
  readonly VITE_STRIPE_JS_URL?: string;
}
interface ImportMeta { readonly env: ImportMetaEnv }
"""


def doc_snippets() -> dict[str, str]:
    """The frontend files docs/integration.md prints, by the path each names."""
    text = (ROOT / "docs" / "integration.md").read_text()
    files: dict[str, str] = {}
    for _, code in CODE_BLOCK.findall(text):
        named = FILE_NAME.match(code)
        if named:
            files[named.group(1)] = code
    return files


def snippet_tsconfig() -> dict[str, Any]:
    """Type-check the snippets as the shop's JavaScript, against the client's sources."""
    return {
        "compilerOptions": {
            "target": "ES2022",
            "module": "ESNext",
            "moduleResolution": "Bundler",
            "lib": ["ES2022", "DOM", "DOM.Iterable"],
            "jsx": "react-jsx",
            "allowJs": True,
            "checkJs": True,
            "noEmit": True,
            "skipLibCheck": True,
            "types": [],
            "paths": {
                "@checkout-service/client": [str(CLIENT / "src" / "index.ts")],
                "@checkout-service/client/react": [str(CLIENT / "src" / "react.tsx")],
            },
        },
        "include": ["src", "env.d.ts"],
    }


class TestDocs:
    def test_every_code_block_is_a_named_file_or_the_tested_webhook_check(self):
        text = (ROOT / "docs" / "integration.md").read_text()
        unnamed = [
            code
            for _, code in CODE_BLOCK.findall(text)
            if not FILE_NAME.match(code) and code.strip() != VERIFY_NODE.strip()
        ]
        assert unnamed == [], "a snippet that is not a whole file cannot be checked"
        assert {"src/checkout.js", "src/Checkout.jsx"} <= set(doc_snippets())

    def test_the_snippets_type_check_against_the_client(self, npm: str):
        js_package.install(npm)
        # Inside clients/js, so the snippets' imports resolve from its node_modules.
        with tempfile.TemporaryDirectory(dir=CLIENT, prefix=".snippets-") as folder:
            project = Path(folder)
            for name, code in doc_snippets().items():
                (project / name).parent.mkdir(parents=True, exist_ok=True)
                (project / name).write_text(code)
            (project / "env.d.ts").write_text(VITE_ENV)
            (project / "tsconfig.json").write_text(json.dumps(snippet_tsconfig()))
            tsc = CLIENT / "node_modules" / ".bin" / "tsc"
            js_package.run([str(tsc), "-p", str(project / "tsconfig.json")])
