// share.js draws a room link as a QR code, in the page, so that a phone's
// camera can open the room. Nothing leaves the page: the link's fragment
// (an encrypted room's key) never reaches any server.

import { encode } from './qr.js';

// modulePx is the size of one QR module on the canvas; quietModules is the
// blank border scanners need around the code.
const modulePx = 4;
const quietModules = 4;

// drawQR draws text's QR code on canvas, dark on white whatever the theme,
// with its quiet zone.
export function drawQR(canvas, text) {
  const rows = encode(text);
  const size = (rows.length + 2 * quietModules) * modulePx;
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, size, size);
  ctx.fillStyle = '#000';
  rows.forEach((row, r) => row.forEach((dark, c) => {
    if (dark) ctx.fillRect((c + quietModules) * modulePx, (r + quietModules) * modulePx, modulePx, modulePx);
  }));
}
