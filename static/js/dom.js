// Tiny DOM helpers. Text always goes in through textContent / text nodes, never through
// innerHTML, so nothing a partner (or a server) sends can become markup.

/**
 * Make an element. props: `class`, `text` (textContent), `testid` (data-testid), `value`
 * and `checked` (set as properties), `on<event>` (listeners), `dataset` (object); any other
 * key becomes an attribute (true → empty attribute; false/null/undefined → omitted).
 * Children: elements, strings (as text nodes), arrays, or null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) {
            continue;
        }
        if (key === 'class') {
            el.className = value;
        } else if (key === 'text') {
            el.textContent = value;
        } else if (key === 'testid') {
            el.dataset.testid = value;
        } else if (key === 'dataset') {
            Object.assign(el.dataset, value);
        } else if (key === 'value' || key === 'checked') {
            el[key] = value;
        } else if (key.startsWith('on') && typeof value === 'function') {
            el.addEventListener(key.slice(2), value);
        } else if (value === true) {
            el.setAttribute(key, '');
        } else {
            el.setAttribute(key, String(value));
        }
    }
    append(el, children);
    return el;
}

/** Append children (see h) to an element. */
export function append(el, children) {
    for (const child of [children].flat(Infinity)) {
        if (child === null || child === undefined || child === false) {
            continue;
        }
        el.append(child);
    }
    return el;
}

/** Replace all children of an element. */
export function replace(el, ...children) {
    el.replaceChildren();
    return append(el, children);
}

/**
 * Keyed section: rebuild `el`'s children with build() only when `key` changed since the
 * last call, so that a text box being typed in keeps its value and focus while unrelated
 * parts of the page update. Returns true if it rebuilt.
 */
export function keyed(el, key, build) {
    if (el.dataset.key === key) {
        return false;
    }
    el.dataset.key = key;
    replace(el, build());
    return true;
}

/** A fresh element id for label/for and aria-describedby pairs (random: no shared counter). */
export function uid(prefix) {
    const bytes = new Uint32Array(2);
    globalThis.crypto.getRandomValues(bytes);
    return `${prefix}-${bytes[0].toString(36)}${bytes[1].toString(36)}`;
}

/**
 * Say something to screen readers through the page's polite live region
 * (an element with data-live). Clears first so that a repeated text is read again.
 */
export function announce(text) {
    const region = document.querySelector('[data-live]');
    if (!region) {
        return;
    }
    const line = h('p', { text });
    region.append(line);
    while (region.childElementCount > 5) {
        region.firstElementChild.remove();
    }
}

/** Move focus to an element (making it focusable if it is not). */
export function focus(el, { preventScroll = false } = {}) {
    if (!el) {
        return;
    }
    if (!el.hasAttribute('tabindex') && !/^(A|BUTTON|INPUT|TEXTAREA|SELECT)$/.test(el.tagName)) {
        el.setAttribute('tabindex', '-1');
    }
    el.focus({ preventScroll });
}
