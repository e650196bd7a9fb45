// markdown.js formats message text with a small, safe subset of Markdown:
// `inline code`, fenced code blocks, **bold**, _italic_, ~~strike~~ and
// http(s) links. parse turns text into a small token tree and never touches
// the DOM; render builds elements from that tree, only of the kinds in
// allowedTags, and sets every piece of text with textContent. Nothing is ever
// parsed as HTML, so raw HTML in a message stays text.
//
// The rules are written here by hand rather than vendored: the Markdown
// libraries worth trusting (marked, markdown-it, micromark) render to an HTML
// string that must then be parsed and sanitised, which is the one thing this
// page never does; they are also ten to a hundred times the size of this file
// for syntax a chat message does not need (headings, tables, images, raw HTML).

// blockTypes and inlineTypes are every token type parse can return.
export const blockTypes = ['para', 'codeblock'];
export const inlineTypes = ['text', 'code', 'strong', 'em', 'del', 'link'];

// allowedTags are the only elements render creates.
export const allowedTags = ['DIV', 'PRE', 'CODE', 'STRONG', 'EM', 'DEL', 'A', 'BUTTON'];

// maxDepth bounds how deeply emphasis nests (**_~~x~~_**), and so the work a
// hostile message can cause.
const maxDepth = 4;

// fencePattern is a line that opens or closes a code block: three or more
// backticks or tildes, and on an opening line an optional language word.
const fencePattern = /^ {0,3}(`{3,}|~{3,})[ \t]*([\w+#.-]*)[ \t]*$/;

// linkPattern is an http(s) URL, matched where the scan stands.
const linkPattern = /https?:\/\/[^\s<>"'`]+/y;
// trailingPunctuation is not part of a link at the end of a sentence.
const trailingPunctuation = /[.,;:!?)\]}'"*_~]+$/;
// wordChar is a letter or digit: _ next to one is part of a word, not emphasis.
const wordChar = /[\p{L}\p{N}]/u;
const space = /\s/;

// parse returns the block tokens of text: {type: 'para', children} for
// ordinary text (newlines kept) and {type: 'codeblock', lang, text}.
export function parse(text) {
  const blocks = [];
  const lines = String(text).split('\n');
  let para = [];
  const flush = () => {
    if (para.length) blocks.push({ type: 'para', children: parseInline(para.join('\n'), 0) });
    para = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(fencePattern);
    if (!open) {
      para.push(lines[i]);
      continue;
    }
    const fence = open[1];
    const body = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = lines[j].match(fencePattern);
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length && close[2] === '') break;
      body.push(lines[j]);
    }
    flush();
    // An unclosed fence runs to the end of the message, as in CommonMark.
    blocks.push({ type: 'codeblock', lang: open[2], text: body.join('\n') });
    i = j;
  }
  flush();
  return blocks;
}

// parseInline returns the inline tokens of s.
export function parseInline(s, depth = 0) {
  const out = [];
  let buf = '';
  const push = (tok) => {
    if (buf) out.push({ type: 'text', text: buf });
    buf = '';
    out.push(tok);
  };
  let i = 0;
  while (i < s.length) {
    const found = codeSpan(s, i) || autolink(s, i) || (depth < maxDepth && emphasis(s, i, depth));
    if (found) {
      push(found.token);
      i = found.end;
    } else if (s[i] === '`') {
      // A run of backticks without its closing run is text, all of it.
      let j = i;
      while (s[j] === '`') j++;
      buf += s.slice(i, j);
      i = j;
    } else {
      buf += s[i];
      i++;
    }
  }
  if (buf) out.push({ type: 'text', text: buf });
  return out;
}

// codeSpan reads `code` at i: a run of backticks closed by a run of the same
// length. One space on each side is trimmed, so `` `x` `` can show backticks.
function codeSpan(s, i) {
  if (s[i] !== '`') return null;
  let j = i;
  while (s[j] === '`') j++;
  const fence = s.slice(i, j);
  let k = j;
  for (;;) {
    k = s.indexOf(fence, k);
    if (k < 0) return null;
    let e = k + fence.length;
    if (s[e] !== '`') {
      let text = s.slice(j, k);
      if (text.length > 2 && text[0] === ' ' && text[text.length - 1] === ' ' && text.trim() !== '') {
        text = text.slice(1, -1);
      }
      return { token: { type: 'code', text }, end: e };
    }
    while (s[e] === '`') e++;
    k = e; // A longer run does not close this one.
  }
}

// autolink reads an http(s) URL at i, when it starts a word.
function autolink(s, i) {
  if (s[i] !== 'h' || (i > 0 && wordChar.test(s[i - 1]))) return null;
  linkPattern.lastIndex = i;
  const m = linkPattern.exec(s);
  if (!m) return null;
  let raw = m[0];
  const trail = raw.match(trailingPunctuation);
  if (trail) raw = raw.slice(0, -trail[0].length);
  const href = safeHref(raw);
  if (!href) return null;
  return { token: { type: 'link', href, text: raw }, end: i + raw.length };
}

// safeHref returns raw as an absolute http(s) URL, or "" if it is not one.
export function safeHref(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return '';
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : '';
}

// delimiters maps each emphasis marker to its token type.
const delimiters = [['**', 'strong'], ['~~', 'del'], ['_', 'em']];

// emphasis reads **bold**, ~~strike~~ or _italic_ at i. The text inside
// must not start or end with a space; _ must not touch a letter or digit on
// its outer sides, so snake_case_names stay as they are.
function emphasis(s, i, depth) {
  for (const [mark, type] of delimiters) {
    if (!s.startsWith(mark, i)) continue;
    const from = i + mark.length;
    if (from >= s.length || space.test(s[from])) return null;
    if (mark === '_' && (s[from] === '_' || (i > 0 && (s[i - 1] === '_' || wordChar.test(s[i - 1]))))) return null;
    for (let k = s.indexOf(mark, from + 1); k > 0; k = s.indexOf(mark, k + 1)) {
      if (space.test(s[k - 1])) continue;
      if (mark === '_' && k + 1 < s.length && wordChar.test(s[k + 1])) continue;
      return { token: { type, children: parseInline(s.slice(from, k), depth + 1) }, end: k + mark.length };
    }
    return null;
  }
  return null;
}

// copiedMs is how long a copy button says it copied.
const copiedMs = 2000;

// copyCode puts a code block's text on the clipboard and says so on its
// button; where the clipboard is refused it selects the code instead, for
// the person to copy.
export async function copyCode(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const code = button.parentElement?.querySelector('code');
    if (code) getSelection()?.selectAllChildren(code);
    return;
  }
  button.dataset.state = 'copied';
  button.setAttribute('aria-label', 'Code copied');
  setTimeout(() => {
    delete button.dataset.state;
    button.setAttribute('aria-label', 'Copy code');
  }, copiedMs);
}

// tagOf is the element each inline token becomes.
const tagOf = { code: 'code', strong: 'strong', em: 'em', del: 'del', link: 'a' };

// render returns a fragment of doc for text: its formatting as elements,
// its words as text nodes. onCopy(text, button) runs when a code block's
// copy button is pressed.
export function render(text, doc = document, onCopy = copyCode) {
  const frag = doc.createDocumentFragment();
  for (const block of parse(text)) {
    frag.append(block.type === 'codeblock' ? codeBlock(block, doc, onCopy) : inline(block.children, doc));
  }
  return frag;
}

// inline renders inline tokens.
function inline(tokens, doc) {
  const frag = doc.createDocumentFragment();
  for (const tok of tokens) {
    if (tok.type === 'text') {
      frag.append(doc.createTextNode(tok.text));
      continue;
    }
    const tag = tagOf[tok.type];
    if (!tag) continue; // parse makes no other kind.
    const el = doc.createElement(tag);
    if (tok.type === 'link') {
      el.href = tok.href;
      el.target = '_blank';
      el.rel = 'noopener noreferrer nofollow';
      el.textContent = tok.text;
    } else if (tok.type === 'code') {
      el.textContent = tok.text;
    } else {
      el.append(inline(tok.children, doc));
    }
    frag.append(el);
  }
  return frag;
}

// codeBlock renders a fenced block: monospace, whitespace kept, scrolling
// sideways inside the bubble, with a copy button. The button's visible word
// comes from CSS, so the message's textContent stays its text.
function codeBlock(block, doc, onCopy) {
  const box = doc.createElement('div');
  box.className = 'codeblock';
  const pre = doc.createElement('pre');
  pre.tabIndex = 0; // It scrolls, so the keyboard can reach it.
  const code = doc.createElement('code');
  code.textContent = block.text;
  pre.append(code);
  const copy = doc.createElement('button');
  copy.type = 'button';
  copy.className = 'copy-code';
  copy.setAttribute('aria-label', 'Copy code');
  copy.title = 'Copy code';
  copy.addEventListener('click', () => onCopy(block.text, copy));
  box.append(pre, copy);
  return box;
}
