// Countdowns shown as m:ss that tick by themselves: the element keeps its end time in
// data-countdown and only its text changes, so nothing is re-rendered each second.

/** "4:05", or "0:00" once over. */
export function countdownText(ends, now = Date.now()) {
    const left = Math.max(0, Math.ceil((ends - now) / 1000));
    return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
}

/** Tick every countdown on the page once a second (text only, no re-render). */
export function tickCountdowns(root = document) {
    for (const el of root.querySelectorAll('[data-countdown]')) {
        const text = countdownText(Number(el.dataset.countdown));
        if (el.textContent !== text) {
            el.textContent = text;
        }
    }
}
