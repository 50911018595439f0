// Tests of static/js/my-rooms.js: the start page lists this browser's conversations in
// progress, newest first, and nothing expired, ended, half-joined or half-moved.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import './flow-view-fixtures.mjs';
import { inProgress, myRoomsView } from '../../static/js/my-rooms.js';

const NOW = 1_000_000;
const rec = (room, extra = {}) => ({ room, role: 'A', created: 10, expires: NOW + 1, ...extra });

describe('conversations on this device', () => {
    test('only those still going on, newest first', () => {
        const list = inProgress([
            rec('old', { created: 5 }), rec('new', { created: 50 }),
            rec('ended', { ended: true }), rec('expired', { expires: NOW }),
            rec('joining', { joining: true }), rec('moving', { moving: 'tok' }),
            rec('noexpiry', { expires: undefined }), null,
        ], NOW);
        assert.deepEqual(list.map((r) => r.room), ['new', 'old']);
    });

    test('each opens its room; none: no section', () => {
        assert.equal(myRoomsView([]), null);
        const el = myRoomsView([rec('room_1234', { title: 'Short', role: 'B' })]);
        const link = el.querySelector('[data-testid=my-room-open]');
        assert.equal(link.getAttribute('href'), '/r/room_1234');
        assert.match(el.querySelector('[data-testid=my-room]').textContent, /Short · you joined/);
    });
});
