// Tests of static/markdown.js, run by `node --test` (test/markdown_node_test.go
// runs them with the Go suite): the rules, and a fuzz of the parser and the
// renderer with the browser tests' XSS payloads and seeded random input,
// rendered into a fake document that refuses anything but the allowed
// elements and attributes and has no way to parse HTML at all.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const source = readFileSync(new URL('../static/markdown.js', import.meta.url), 'utf8');
const md = await import(`data:text/javascript,${encodeURIComponent(source)}`);

// allowedProps are the only properties or attributes render may set.
const allowedProps = new Set(['href', 'target', 'rel', 'className', 'type', 'title', 'tabIndex', 'aria-label']);

// FakeNode is an element or fragment of the fake document. Setting any
// property outside allowedProps, or any HTML-parsing API, throws.
class FakeNode {
  constructor(tag) {
    this.tag = tag;
    this.children = [];
    this.props = {};
    this.meta = { listeners: 0 };
    return new Proxy(this, {
      set(target, key, value) {
        if (key === 'textContent') {
          target.children = [{ text: String(value) }];
          return true;
        }
        if (!allowedProps.has(key)) throw new Error(`render set ${String(key)} on <${target.tag}>`);
        target.props[key] = value;
        return true;
      },
    });
  }

  append(...nodes) {
    for (const n of nodes) {
      if (n instanceof FakeNode && n.tag === '#fragment') this.children.push(...n.children);
      else if (n instanceof FakeNode || (n && typeof n.text === 'string')) this.children.push(n);
      else this.children.push({ text: String(n) });
    }
  }

  setAttribute(name, value) {
    if (!allowedProps.has(name)) throw new Error(`render set attribute ${name} on <${this.tag}>`);
    this.props[name] = String(value);
  }

  addEventListener(type) {
    assert.equal(type, 'click');
    this.meta.listeners++;
  }

  get innerHTML() { throw new Error('render read innerHTML'); }
  insertAdjacentHTML() { throw new Error('render called insertAdjacentHTML'); }
}

// fakeDocument creates only FakeNodes; it has no parser.
const fakeDocument = {
  createDocumentFragment: () => new FakeNode('#fragment'),
  createElement: (tag) => new FakeNode(String(tag).toUpperCase()),
  createTextNode: (text) => ({ text: String(text) }),
};

// textOf is what a reader sees of a rendered node, as textContent.
function textOf(n) {
  return n instanceof FakeNode ? n.children.map(textOf).join('') : n.text;
}

// checkTree asserts that everything under n is an allowed element or text.
function checkTree(n, input) {
  for (const c of n.children) {
    if (!(c instanceof FakeNode)) {
      assert.equal(typeof c.text, 'string');
      continue;
    }
    assert.ok(md.allowedTags.includes(c.tag), `element <${c.tag}> from ${JSON.stringify(input)}`);
    if (c.tag === 'A') {
      const url = new URL(c.props.href);
      assert.ok(url.protocol === 'http:' || url.protocol === 'https:', `link ${c.props.href} from ${JSON.stringify(input)}`);
      assert.equal(c.props.rel, 'noopener noreferrer nofollow');
      assert.equal(c.props.target, '_blank');
    } else {
      assert.equal(c.props.href, undefined);
    }
    if (c.tag === 'BUTTON') assert.equal(textOf(c), '', 'a copy button adds no text');
    checkTree(c, input);
  }
}

// checkTokens asserts that parse returns only the documented token types.
function checkTokens(blocks, input) {
  const inline = (toks) => {
    for (const t of toks) {
      assert.ok(md.inlineTypes.includes(t.type), `token ${t.type} from ${JSON.stringify(input)}`);
      if (t.type === 'link') assert.match(md.safeHref(t.href), /^https?:\/\//);
      if (t.children) inline(t.children);
      else assert.equal(typeof t.text, 'string');
    }
  };
  for (const b of blocks) {
    assert.ok(md.blockTypes.includes(b.type), `block ${b.type} from ${JSON.stringify(input)}`);
    if (b.type === 'para') inline(b.children);
    else assert.equal(typeof b.text, 'string');
  }
}

// kept is what of a text no rule may drop or add: everything but the
// syntax characters, spaces and the words a code fence may name.
const kept = (s) => s.replace(/[`*_~\s\w+#.-]/g, '');

// checkInput parses and renders input and checks the result.
function checkInput(input) {
  checkTokens(md.parse(input), input);
  const root = new FakeNode('DIV');
  root.append(md.render(input, fakeDocument, () => {}));
  checkTree(root, input);
  assert.equal(kept(textOf(root)), kept(input), `characters lost or added for ${JSON.stringify(input)}`);
}

// payloads are the markup the browser tests send, and more of its kind.
const payloads = [
  '<img src=x onerror="window.__pwned=1">',
  '<script>window.__pwned=2</script>',
  '<a href="javascript:window.__pwned=3">click</a> javascript:alert(1) and https://example.com/ok?a=1&b=<2>.',
  '[click](javascript:alert(1))',
  '**<img src=x onerror=alert(1)>**',
  '_<svg onload=alert(1)>_',
  '~~<iframe src="javascript:alert(1)"></iframe>~~',
  '`<script>alert(1)</script>`',
  '```html\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n```',
  'https://example.com/"><script>alert(1)</script>',
  'https://example.com/<img src=x>',
  'javascript://example.com/%0aalert(1)',
  'data:text/html,<script>alert(1)</script>',
  'http://[::1"onmouseover="alert(1)]/',
  'https://e.com/**a**_b_~~c~~`d`',
  '<style>*{display:none}</style>',
  '&lt;script&gt; &#60;b&#62; &amp;',
  '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
];

test('XSS payloads stay text', () => {
  for (const p of payloads) checkInput(p);
  const root = new FakeNode('DIV');
  root.append(md.render(payloads[2], fakeDocument));
  const links = [];
  const walk = (n) => n.children.forEach((c) => { if (c instanceof FakeNode) { if (c.tag === 'A') links.push(c.props.href); walk(c); } });
  walk(root);
  assert.deepEqual(links, ['https://example.com/ok?a=1&b=']);
});

// mulberry32 is a small seeded generator, so a failure can be replayed.
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// pieces are what random messages are made of: syntax, markup, URLs, text.
const pieces = ['`', '```', '```js', '~~~', '**', '*', '_', '__', '~~', '~', '\n', ' ', '  ', '\t', '<', '>', '"', "'",
  '&', '=', '/', '\\', '[', ']', '(', ')', 'a', 'word', 'snake_case', 'é', '😀', '\u0000', '\u202e',
  'http://', 'https://', 'https://example.com/p?q=1', 'javascript:', 'data:', 'onerror=', '<img src=x onerror=alert(1)>',
  '<script>', '</script>', '<a href="', 'https://x.y/a_b_c', '.', ',', '!', '1', '# ', '> '];

test('random input renders only allowed elements and keeps every character', () => {
  const seed = Number(process.env.MARKDOWN_SEED || 20261206);
  const rand = mulberry32(seed);
  for (let n = 0; n < 5000; n++) {
    let input = '';
    const len = Math.floor(rand() * 40);
    for (let k = 0; k < len; k++) input += pieces[Math.floor(rand() * pieces.length)];
    checkInput(input);
  }
  for (let n = 0; n < 500; n++) {
    let input = '';
    const len = Math.floor(rand() * 200);
    for (let k = 0; k < len; k++) input += String.fromCodePoint(Math.floor(rand() * 0x250));
    checkInput(input);
  }
});

test('hostile nesting stays bounded', () => {
  for (const unit of ['**_~~', '`', '_a', '**a', '~~ ', 'https://a.b/', '```\n']) {
    checkInput(unit.repeat(Math.ceil(4096 / unit.length)));
  }
});

// shape renders input and describes the tree, as "strong(text)" etc.
function shape(input) {
  const root = new FakeNode('DIV');
  root.append(md.render(input, fakeDocument, () => {}));
  const d = (n) => (n instanceof FakeNode ? `${n.tag.toLowerCase()}(${n.children.map(d).join('')})` : n.text);
  return root.children.map(d).join('');
}

test('the rules', () => {
  const cases = [
    ['plain text', 'plain text'],
    ['**bold** and _italic_ and ~~gone~~', 'strong(bold) and em(italic) and del(gone)'],
    ['**_both_**', 'strong(em(both))'],
    ['use `a < b` here', 'use code(a < b) here'],
    ['`` `tick` ``', 'code(`tick`)'],
    ['snake_case_name and 2*3*4', 'snake_case_name and 2*3*4'],
    ['__dunder__', '__dunder__'],
    ['** not bold **', '** not bold **'],
    ['a `lone backtick', 'a `lone backtick'],
    ['see https://example.com/a_b, ok', 'see a(https://example.com/a_b), ok'],
    ['**https://example.com**', 'strong(a(https://example.com))'],
    ['`https://example.com`', 'code(https://example.com)'],
    ['xhttps://example.com', 'xhttps://example.com'],
    ['before\n```js\nlet a  =  1;\n  b()\n```\nafter', 'beforediv(pre(code(let a  =  1;\n  b()))button())after'],
    ['```\nunclosed **x**', 'div(pre(code(unclosed **x**))button())'],
    ['```\na\n~~~\nb\n```', 'div(pre(code(a\n~~~\nb))button())'],
  ];
  for (const [input, want] of cases) assert.equal(shape(input), want, JSON.stringify(input));
});

test('a code block names its copy button and wires it', () => {
  const copied = [];
  const root = new FakeNode('DIV');
  root.append(md.render('```\nx = 1\n```', fakeDocument, (text) => copied.push(text)));
  const button = root.children[0].children[1];
  assert.equal(button.tag, 'BUTTON');
  assert.equal(button.props['aria-label'], 'Copy code');
  assert.equal(button.meta.listeners, 1);
});
