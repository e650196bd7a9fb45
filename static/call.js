// call.js is a room's call: voice, video and screen sharing between the
// members' browsers, peer to peer (WebRTC), one connection per pair (a
// mesh). The server relays only the signalling: session descriptions and
// ICE candidates, addressed to one member. In an encrypted room they are
// sealed with the room key, so the server cannot swap the DTLS fingerprints
// they carry and sit in the middle of the media.
//
// Each pair negotiates with MDN's "perfect negotiation" pattern: the member
// whose name sorts first is polite and gives way when both offer at once.

// noPathAfter is how long a peer may stay unconnected before the tile says
// so in words; ICE keeps trying meanwhile.
const noPathAfter = 20000;
// statsEvery is how often each connection's statistics are read: the
// speaking indicator and whether the path is direct or relayed.
const statsEvery = 1000;
// speakingLevel is the audio level (0..1) above which someone is speaking.
const speakingLevel = 0.02;

const $ = (id) => document.getElementById(id);

// mediaError explains a getUserMedia or getDisplayMedia failure in words.
export function mediaError(err, what) {
  if (!window.isSecureContext || !navigator.mediaDevices) {
    return 'Calls need a secure page (https:// or localhost): this browser offers no camera or microphone here.';
  }
  switch (err && err.name) {
    case 'NotAllowedError': return `Permission to use the ${what} was denied. Allow it in the browser’s site settings and try again.`;
    case 'NotFoundError': case 'OverconstrainedError': return `No ${what} was found on this device.`;
    case 'NotReadableError': return `The ${what} is in use by another program, or the system blocked it.`;
    default: return `The ${what} could not be started.`;
  }
}

// Peer is the connection to one other member of the call.
class Peer {
  constructor(call, name) {
    this.call = call;
    this.name = name;
    this.polite = call.me < name;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.inbox = Promise.resolve(); // signals, opened and applied in order
    this.outbox = Promise.resolve(); // signals, sealed and sent in order
    this.screenId = ''; // the stream id of the peer's screen share
    this.senders = new Map(); // local track → RTCRtpSender
    this.tile = call.tile(name, false);
    this.pc = new RTCPeerConnection({ iceServers: call.iceServers });
    this.pc.onnegotiationneeded = () => this.offer();
    this.pc.onicecandidate = ({ candidate }) => { if (candidate) this.send({ candidate: candidate.toJSON() }); };
    this.pc.ontrack = (ev) => this.track(ev);
    this.pc.onconnectionstatechange = () => this.stateChanged();
    this.timer = setTimeout(() => this.noPath(), noPathAfter);
    // The member who joined later makes the first offer; the other adds
    // its tracks only on answering it. Two first offers crossing would be
    // resolved by the pattern, but a rolled-back first offer can leave ICE
    // without candidates to send.
    this.started = call.members.indexOf(call.me) > call.members.indexOf(name);
    if (this.started) this.start();
  }

  // start adds the local tracks, and asks to receive audio even when there
  // is none to send, so that a listener's first offer has something in it.
  start() {
    this.started = true;
    for (const t of this.call.localTracks()) this.addTrack(t.track, t.stream);
    if (!this.call.mic && this.pc.getTransceivers().length === 0) this.pc.addTransceiver('audio', { direction: 'recvonly' });
  }

  addTrack(track, stream) {
    if (this.started && !this.senders.has(track)) this.senders.set(track, this.pc.addTrack(track, stream));
  }

  removeTrack(track) {
    const sender = this.senders.get(track);
    this.senders.delete(track);
    if (sender && this.pc.signalingState !== 'closed') this.pc.removeTrack(sender);
  }

  async offer() {
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.send({ description: this.pc.localDescription.toJSON(), screen: this.call.screenId() });
    } catch (err) {
      this.call.report(err);
    } finally {
      this.makingOffer = false;
    }
  }

  // receive applies one signal from the peer (perfect negotiation).
  async receive(data) {
    const pc = this.pc;
    if (data.description) {
      if (typeof data.screen === 'string') this.screenId = data.screen;
      const d = data.description;
      const collision = d.type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      await pc.setRemoteDescription(d);
      if (d.type === 'offer' && !this.started) this.start();
      if (d.type === 'offer') {
        await pc.setLocalDescription();
        this.send({ description: pc.localDescription.toJSON(), screen: this.call.screenId() });
      }
    } else if (data.candidate) {
      try {
        await pc.addIceCandidate(data.candidate);
      } catch (err) {
        if (!this.ignoreOffer) throw err;
      }
    }
  }

  send(data) {
    this.outbox = this.outbox.then(() => this.call.sendSignal(this.name, data)).catch((err) => this.call.report(err));
  }

  track({ track, streams }) {
    const stream = streams[0] || new MediaStream([track]);
    if (stream.id === this.screenId && track.kind === 'video') {
      this.call.screenTile(this.name, stream);
      stream.onremovetrack = () => { if (stream.getTracks().length === 0) this.call.dropScreen(this.name); };
      track.onmute = () => this.call.dropScreen(this.name);
      track.onunmute = () => this.call.screenTile(this.name, stream);
      return;
    }
    const video = this.tile.querySelector('video');
    if (video.srcObject !== stream) video.srcObject = stream;
    const showVideo = () => this.tile.classList.toggle('no-video', !stream.getVideoTracks().some((t) => !t.muted));
    track.onmute = showVideo;
    track.onunmute = showVideo;
    stream.onremovetrack = showVideo;
    showVideo();
  }

  stateChanged() {
    const s = this.pc.connectionState;
    if (s === 'connected') {
      clearTimeout(this.timer);
      this.timer = 0;
      this.setNote('');
    } else if (s === 'failed') {
      this.pc.restartIce(); // a network changed, or a path died: look again
      if (!this.timer) this.timer = setTimeout(() => this.noPath(), noPathAfter);
    }
  }

  noPath() {
    this.timer = 0;
    if (this.pc.connectionState === 'connected') return;
    this.setNote(this.call.iceServers.length
      ? `No connection to ${this.name} yet: no network path worked, not even through the relay. Still trying.`
      : `No connection to ${this.name} yet: no direct path worked, and this server offers no relay. Calls between different networks may fail here.`);
  }

  setNote(text) {
    const note = this.tile.querySelector('.tile-note');
    note.textContent = text;
    note.hidden = !text;
  }

  // stats updates the speaking indicator and the path label.
  async stats() {
    const report = await this.pc.getStats();
    let level = 0;
    let pairId = '';
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio' && typeof s.audioLevel === 'number') level = Math.max(level, s.audioLevel);
      if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    this.tile.classList.toggle('speaking', level > speakingLevel);
    const pair = report.get(pairId);
    const local = pair && report.get(pair.localCandidateId);
    const remote = pair && report.get(pair.remoteCandidateId);
    const path = this.tile.querySelector('.tile-path');
    if (!local) {
      path.textContent = 'connecting…';
      return;
    }
    const relayed = local.candidateType === 'relay' || remote?.candidateType === 'relay';
    path.textContent = relayed ? 'relayed' : 'direct';
    this.tile.dataset.path = path.textContent;
  }

  close() {
    clearTimeout(this.timer);
    this.pc.close();
    this.tile.remove();
    this.call.dropScreen(this.name);
  }
}

// Call is the room's call as this page sees it.
export class Call {
  // send(type, payload) sends a frame and reports whether it went out;
  // seal is the room's RoomSeal.
  constructor({ send, seal }) {
    this.sendFrame = send;
    this.seal = seal;
    this.me = '';
    this.max = 0;
    this.members = [];
    this.iceServers = [];
    this.joined = false;
    this.local = null; // one stream for microphone and camera, so they arrive together
    this.mic = null; // {track, stream}
    this.cam = null;
    this.screen = null;
    this.peers = new Map();
    this.statsTimer = 0;
    this.wireControls();
    addEventListener('pagehide', () => this.leave());
  }

  wireControls() {
    $('call-start').addEventListener('click', () => (this.joined ? this.leave() : this.join()));
    $('call-join').addEventListener('click', () => this.join());
    $('call-leave').addEventListener('click', () => this.leave());
    $('call-mic').addEventListener('click', () => this.toggleMic());
    $('call-cam').addEventListener('click', () => this.toggleCam());
    $('call-screen').addEventListener('click', () => (this.screen ? this.stopScreen() : this.startScreen()));
  }

  // welcome applies the welcome of a (re)connection.
  welcome(p, me) {
    this.me = me;
    this.max = Number(p.call?.max) || 0;
    this.iceServers = Array.isArray(p.iceServers) ? p.iceServers : [];
    const members = Array.isArray(p.call?.members) ? p.call.members.map(String) : [];
    // A new connection that the server does not know in the call joins
    // again; the media connections themselves never went through it.
    if (this.joined && !members.includes(me)) this.sendFrame('call', { action: 'join' });
    this.update(members);
  }

  // update applies the server's list of who is in the call.
  update(members) {
    this.members = members;
    // Connections start once the server lists this page in the call, so
    // that no signal is sent before the server would deliver it.
    if (this.joined && members.includes(this.me)) {
      for (const name of members) {
        if (name !== this.me && !this.peers.has(name)) this.peers.set(name, new Peer(this, name));
      }
      for (const [name, peer] of this.peers) {
        if (!members.includes(name)) {
          peer.close();
          this.peers.delete(name);
        }
      }
    }
    this.render();
  }

  render() {
    const n = this.members.length;
    const full = n >= this.max && !this.joined;
    const locked = this.seal().encrypted && !this.seal().canSeal();
    const start = $('call-start');
    start.hidden = this.max === 0;
    start.disabled = !this.joined && (full || locked);
    start.textContent = this.joined ? 'Leave call' : full ? `Call full (${this.max})` : n ? `Join call (${n})` : 'Call';
    $('call-banner').hidden = this.joined || n === 0;
    $('call-banner-text').textContent = full
      ? `A call is on with ${n} people, the most it can hold.`
      : `A call is on: ${this.members.join(', ')}.`;
    $('call-join').hidden = full || locked;
    $('call').hidden = !this.joined;
    $('call-mic').textContent = this.mic?.track.enabled ? 'Mute' : this.mic ? 'Unmute' : 'No microphone';
    $('call-mic').disabled = !this.mic;
    $('call-mic').setAttribute('aria-pressed', String(Boolean(this.mic && !this.mic.track.enabled)));
    $('call-cam').textContent = this.cam ? 'Camera off' : 'Camera on';
    $('call-screen').textContent = this.screen ? 'Stop sharing' : 'Share screen';
    $('call-screen').hidden = !navigator.mediaDevices?.getDisplayMedia;
  }

  async join() {
    if (this.joined) return;
    this.notice('');
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      this.local = new MediaStream();
      this.mic = { track: stream.getAudioTracks()[0], stream: this.local };
    } catch (err) {
      this.notice(mediaError(err, 'microphone') + ' You can still listen and watch.');
    }
    if (!this.sendFrame('call', { action: 'join' })) {
      this.stopTracks();
      this.notice('Not connected to the room: try again in a moment.');
      return;
    }
    this.joined = true;
    this.selfTile();
    this.statsTimer = setInterval(() => this.pollStats(), statsEvery);
    this.update(this.members);
  }

  leave() {
    if (!this.joined) return;
    this.joined = false;
    this.sendFrame('call', { action: 'leave' });
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    this.stopTracks();
    clearInterval(this.statsTimer);
    $('call-tiles').replaceChildren();
    $('call-screens').replaceChildren();
    this.notice('');
    this.render();
  }

  // reset forgets the room: leaving it ends the call.
  reset() {
    this.leave();
    this.members = [];
    this.max = 0;
    this.render();
  }

  stopTracks() {
    for (const t of [this.mic, this.cam, this.screen]) t?.track.stop();
    this.mic = this.cam = this.screen = this.local = null;
  }

  toggleMic() {
    if (!this.mic) return;
    this.mic.track.enabled = !this.mic.track.enabled;
    this.render();
  }

  async toggleCam() {
    if (this.cam) {
      this.removeLocal(this.cam.track);
      this.cam = null;
    } else {
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 } });
        if (!this.joined) return stream.getTracks().forEach((t) => t.stop());
        this.local ||= new MediaStream();
        this.cam = { track: stream.getVideoTracks()[0], stream: this.local };
        this.addLocal(this.cam);
      } catch (err) {
        this.notice(mediaError(err, 'camera'));
      }
    }
    this.selfTile();
    this.render();
  }

  async startScreen() {
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      if (!this.joined) return stream.getTracks().forEach((t) => t.stop());
      this.screen = { track: stream.getVideoTracks()[0], stream };
      this.screen.track.onended = () => this.stopScreen(); // the browser's own "Stop sharing"
      this.addLocal(this.screen);
      this.screenTile(this.me, stream);
    } catch (err) {
      if (err?.name !== 'NotAllowedError') this.notice(mediaError(err, 'screen share'));
    }
    this.render();
  }

  stopScreen() {
    if (!this.screen) return;
    this.removeLocal(this.screen.track);
    this.screen = null;
    this.dropScreen(this.me);
    this.render();
  }

  addLocal(t) {
    for (const peer of this.peers.values()) peer.addTrack(t.track, t.stream);
  }

  removeLocal(track) {
    track.stop();
    for (const peer of this.peers.values()) peer.removeTrack(track);
  }

  localTracks() {
    return [this.mic, this.cam, this.screen].filter(Boolean);
  }

  screenId() {
    return this.screen ? this.screen.stream.id : '';
  }

  // sendSignal sends data to one member, sealed in an encrypted room.
  async sendSignal(to, data) {
    const seal = this.seal();
    if (seal.encrypted) {
      if (!seal.canSeal()) return;
      this.sendFrame('signal', { to, data: await seal.cipher.seal(this.me, JSON.stringify(data)) });
      return;
    }
    this.sendFrame('signal', { to, data });
  }

  // signal handles a signal frame: opened if sealed, in order per peer.
  signal(p) {
    const peer = this.peers.get(String(p.from));
    if (!peer) return;
    peer.inbox = peer.inbox.then(async () => {
      const data = await this.openSignal(p);
      if (data && this.peers.get(peer.name) === peer) await peer.receive(data);
    }).catch((err) => this.report(err));
  }

  async openSignal(p) {
    const seal = this.seal();
    if (!seal.encrypted) return typeof p.data === 'object' ? p.data : null;
    if (!seal.canSeal() || typeof p.data !== 'string') return null; // never in the clear
    const inner = await seal.cipher.open(p.data);
    if (inner.name !== p.from) return null; // sealed by someone else: a replay or an impostor
    return JSON.parse(inner.text);
  }

  // error handles an error frame about calls; it reports whether it did.
  error(p) {
    if (p.code === 'call_full') {
      this.leave();
      this.notice(`The call is full: at most ${this.max} people can be in it.`);
      return true;
    }
    return p.code === 'not_in_call' || p.code === 'bad_recipient'; // a peer just left: nothing to say
  }

  pollStats() {
    for (const peer of this.peers.values()) peer.stats().catch(() => {});
    this.selfStats().catch(() => {});
  }

  async selfStats() {
    const peer = this.peers.values().next().value;
    if (!peer || !this.mic) return;
    let level = 0;
    (await peer.pc.getStats()).forEach((s) => {
      if (s.type === 'media-source' && s.kind === 'audio' && typeof s.audioLevel === 'number') level = s.audioLevel;
    });
    $('call-tiles').querySelector('.tile.self')?.classList.toggle('speaking', this.mic.track.enabled && level > speakingLevel);
  }

  // tile makes the tile of name: video, or the name when there is none.
  tile(name, self) {
    const tile = document.createElement('figure');
    tile.className = 'tile no-video' + (self ? ' self' : '');
    tile.dataset.name = name;
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = self;
    const caption = document.createElement('figcaption');
    const label = document.createElement('span');
    label.className = 'tile-name';
    label.textContent = self ? `${name} (you)` : name;
    const path = document.createElement('span');
    path.className = 'tile-path';
    const note = document.createElement('p');
    note.className = 'tile-note';
    note.hidden = true;
    caption.append(label, path);
    tile.append(video, caption, note);
    $('call-tiles').append(tile);
    return tile;
  }

  selfTile() {
    let tile = $('call-tiles').querySelector('.tile.self');
    if (!tile) tile = this.tile(this.me, true);
    tile.querySelector('video').srcObject = this.cam ? new MediaStream([this.cam.track]) : null;
    tile.classList.toggle('no-video', !this.cam);
  }

  screenTile(name, stream) {
    let tile = $('call-screens').querySelector(`[data-name="${CSS.escape(name)}"]`);
    if (!tile) {
      tile = document.createElement('figure');
      tile.className = 'tile screen';
      tile.dataset.name = name;
      const video = document.createElement('video');
      video.autoplay = true;
      video.playsInline = true;
      video.muted = true;
      const caption = document.createElement('figcaption');
      caption.textContent = name === this.me ? 'Your screen' : `${name}’s screen`;
      tile.append(video, caption);
      $('call-screens').append(tile);
    }
    tile.querySelector('video').srcObject = stream;
  }

  dropScreen(name) {
    $('call-screens').querySelector(`[data-name="${CSS.escape(name)}"]`)?.remove();
  }

  notice(text) {
    $('call-notice').textContent = text;
    $('call-notice').hidden = !text;
  }

  report(err) {
    console.warn('call:', err && err.name); // never the SDP
  }
}
