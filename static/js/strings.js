// Every user-visible string of the browser client, in one place so the UI can be
// translated. Plain strings, or functions for strings that carry a value. No markup.

export const S = {
    appName: 'thou',
    titleStart: 'thou · a guided conversation for two',
    titleRoom: 'thou · conversation',
    titleYourTurn: 'Your turn · thou',
    titleEnded: 'Ended · thou',
    tagline: 'A guided conversation for two.',
    skipToContent: 'Skip to the conversation',
    loading: 'Opening…',
    noScript: 'thou needs JavaScript to keep your answers private in your browser.',

    /* ---------------------------------------------------------------- start page */
    startTitle: 'Talk, listen, and be heard',
    startLead: 'thou guides the two of you through a few questions, one at a time. '
        + 'It works best with someone you want to know a little better: a partner, a friend.',
    howTitle: 'How it works',
    howSteps: [
        'You take turns. One of you answers a question, the other says back what they heard.',
        'The one who answered says whether that was it, or adds what was missing. Then you swap.',
        'Your answers are private to the two of you. They are end-to-end encrypted: '
            + 'not even the server can read them.',
        'Before each deeper stage you both choose whether to go on. Stopping there is a good '
            + 'ending too.',
        'Either of you may pass any question, pause, or stop at any time. No reason needed.',
    ],
    chooseSetLegend: 'Choose your questions',
    setMinutes: (n) => `about ${n} minutes`,
    setQuestions: (n) => (n === 1 ? '1 question' : `${n} questions`),
    createButton: 'Create our conversation',
    creating: 'Creating…',
    setsLoading: 'Loading the question sets…',
    setsFailed: 'The question sets could not be loaded.',
    tryAgain: 'Try again',
    createFailed: 'The conversation could not be created.',

    readyTitle: 'Your conversation is ready',
    readyLead: 'Send this link to your partner, and only to them. '
        + 'The first person to open it takes the second seat.',
    linkLabel: 'Link for your partner',
    copyButton: 'Copy link',
    copied: 'Link copied.',
    copyManual: 'The link is selected: press Ctrl+C (or ⌘C on a Mac) to copy it.',
    enterButton: 'Enter the conversation',
    readyNote: 'Use the button above to go in yourself. Please do not open the link in '
        + 'another browser: it would take your partner’s seat.',
    linkPrivacy: 'The part of the link after “#” is the key to your conversation. '
        + 'It never reaches our server.',

    /* ---------------------------------------------------------------- errors */
    startOver: 'Go to the start page',
    startNew: 'Start a new conversation',
    retry: 'Try again',
    errors: {
        missingSecret: {
            title: 'This link is incomplete',
            body: 'The link is missing its last part (after “#”), which holds the key to the '
                + 'conversation. Ask your partner to send the whole link again, and open it '
                + 'exactly as it was sent.',
        },
        malformedSecret: {
            title: 'This link is damaged',
            body: 'The key at the end of the link (after “#”) is not valid. It may have been cut '
                + 'off or changed while copying. Ask your partner to send the link again.',
        },
        badRoomPath: {
            title: 'This is not a conversation link',
            body: 'The address does not point to a conversation. Check the link, or start a '
                + 'new conversation.',
        },
        unknownRoom: {
            title: 'There is no conversation here',
            body: 'This conversation does not exist. The link may be mistyped, or it was '
                + 'never created.',
        },
        endedRoom: {
            title: 'This conversation has ended',
            body: 'It was ended, so nobody can join it any more. You can always start a new '
                + 'one.',
        },
        goneRoom: {
            title: 'This conversation is gone',
            body: 'It was ended or erased, or it expired. It cannot be opened again, but you '
                + 'can always start a new one.',
        },
        roomFull: {
            title: 'This conversation already has two people',
            body: 'A conversation is always for exactly two people, and both seats are taken. '
                + 'If you were meant to be one of them, ask your partner to start a new '
                + 'conversation and send you the new link.',
        },
        badSecret: {
            title: 'This link does not open the conversation',
            body: 'The key in the link does not match. Ask your partner to send the whole link '
                + 'again.',
        },
        movedAway: {
            title: 'This conversation continues on another device',
            body: 'You opened it on another device with the link from “Continue on another '
                + 'device”, so it goes on there. This browser has forgotten its keys to it.',
        },
        moveUsed: {
            title: 'This link to continue has been used already',
            body: 'A link to continue on another device works once, and this one was opened '
                + 'before. The conversation goes on where it was opened first. If that was not '
                + 'you, end or erase the conversation from there.',
        },
        moveMalformed: {
            title: 'This link is incomplete',
            body: 'The link to continue on another device is damaged or cut short. Show it '
                + 'again on the device you were using and copy all of it.',
        },
        badToken: {
            title: 'This browser is no longer part of the conversation',
            body: 'The conversation does not recognise this browser any more. You can start a '
                + 'new conversation.',
        },
        rateLimited: {
            title: 'Too many tries just now',
            body: 'Please wait a moment, then try again.',
        },
        network: {
            title: 'The server cannot be reached',
            body: 'Check your connection, then try again.',
        },
        server: {
            title: 'Something went wrong on the server',
            body: 'This is not your fault. Please try again in a moment.',
        },
        noStorage: {
            title: 'This browser cannot keep the conversation’s keys',
            body: 'thou keeps your private keys in this browser’s storage (IndexedDB), and it '
                + 'is not available here, perhaps because of a private window or a setting. '
                + 'Try a normal window or another browser.',
        },
        noCrypto: {
            title: 'This browser cannot do the encryption',
            body: 'thou needs a browser with WebAssembly to keep your answers private. Try an '
                + 'up-to-date browser.',
        },
        oldVersion: {
            title: 'This conversation was started with an earlier version of thou',
            body: 'thou now checks more of what each of you sees, and this conversation was set '
                + 'up before it did. It cannot continue here. Please start a new conversation '
                + 'together.',
        },
        otherTab: {
            title: 'This conversation is open in another tab',
            body: 'Use the other tab, or close it and reload this one.',
        },
        unexpected: {
            title: 'Something went wrong',
            body: 'An unexpected error stopped the page. Reloading usually helps; your '
                + 'conversation is kept.',
        },
    },
    reload: 'Reload',

    /* ---------------------------------------------------------------- tampering */
    tamperTitle: 'This conversation may have been tampered with',
    tamperBody: 'The key your partner’s browser announced could not be verified with the key in '
        + 'your link. Someone may be trying to listen in, so thou refuses to continue this '
        + 'conversation. Nothing you write here will be sent.',
    tamperOwnBody: 'The server showed your partner a different key from the one your browser '
        + 'made. Someone may be trying to listen in, so thou refuses to continue this '
        + 'conversation. Nothing you write here will be sent.',
    tamperConfirmBody: 'Your partner’s browser did not confirm the same keys and the same '
        + 'questions as yours. Someone may be trying to listen in, or to show the two of you '
        + 'different questions, so thou refuses to continue this conversation. Nothing you '
        + 'write here will be sent.',
    tamperKeyChangedBody: 'The server presented a different key for your partner from the one '
        + 'your two browsers agreed on. Someone may be trying to listen in, so thou refuses to '
        + 'continue this conversation. Nothing you write here will be sent.',
    tamperSetBody: 'The questions the server sent are not the ones this conversation started '
        + 'with: their wording was changed. So that nothing you write appears under a question '
        + 'you did not see, thou refuses to continue this conversation. Nothing you write here '
        + 'will be sent.',
    tamperForgedBody: 'A step in this conversation (a pass, a “That’s it”, a pause or an end) '
        + 'was not written by your partner’s browser or by yours. Someone may be trying to '
        + 'change the course of your conversation, so thou refuses to continue it. Nothing you '
        + 'write here will be sent.',
    tamperReplayedBody: 'Something written earlier in this conversation was delivered again '
        + 'as if it were new. Someone may be trying to change the course of your conversation, '
        + 'so thou refuses to continue it. Nothing you write here will be sent.',
    tamperAdvice: 'Start a new conversation and send the new link to your partner over a '
        + 'channel you trust.',
    unreadable: 'This message could not be opened: it may have been changed on its way. It is '
        + 'not shown.',
    unreadableBanner: 'A message could not be opened and is not shown. It may have been changed '
        + 'on its way. If this keeps happening, start a new conversation.',
    rollbackBanner: 'Part of this conversation that this browser showed you before is missing '
        + 'now. The server may have lost it or left it out. What you see is genuine, but it is '
        + 'not everything.',
    gapsBanner: (n) => `${n === 1 ? 'One message' : `${n} messages`} from your partner did not `
        + 'arrive here. Usually that is a step the server turned down because the conversation '
        + 'had moved on. If something seems missing, ask your partner.',

    /* ---------------------------------------------------------------- room: frame */
    privacyPending: 'Making it private…',
    privacyDone: 'Private',
    privacyDoneLong: 'Private: end-to-end encrypted. Only the two of you can read your answers.',
    safetyCodeLabel: 'Safety code',
    safetyCodeHelp: 'Compare this code with your partner, aloud or side by side: if it is the '
        + 'same on both phones, nobody is listening in between.',
    welcomeTitle: 'Welcome',
    welcomeLead: 'Your partner invited you to a guided conversation for two: a few questions, '
        + 'one at a time, with time to listen.',
    welcomePrivateTitle: 'What is private',
    welcomeBegin: 'Begin',
    partnerHere: 'Your partner is here',
    partnerAway: 'Your partner is away',
    partnerNotJoined: 'Your partner has not joined yet',
    reconnecting: 'Connection lost. Reconnecting…',
    offline: 'You are offline. What you write is kept and sent when you are back.',

    /* ---------------------------------------------------------------- room: waiting */
    waitingTitle: 'Waiting for your partner',
    waitingLead: 'Send your partner the link below. This page will move on by itself as soon as '
        + 'they open it.',
    waitingKeying: 'Your partner is here. Setting up privacy…',
    keyingTitle: 'Making it private',
    keyingLead: 'Your browsers are exchanging keys so that only the two of you can read your '
        + 'answers. This takes a moment.',
    keyingAway: 'Your partner needs to be here to finish this. It continues when they come '
        + 'back.',
    cancelWaiting: 'Cancel this conversation',
    cancelWaitingQ: 'Cancel this conversation? The link stops working and nothing is kept.',
    cancelWaitingYes: 'Yes, cancel it',

    /* ---------------------------------------------------------------- room: talk */
    progressLabel: 'Progress',
    progressText: (i, n) => `Question ${Math.min(i + 1, n)} of ${n}`,
    stagesLabel: 'Stages',
    stageAbout: 'About this stage',
    stageLabel: (i, n) => `Stage ${i + 1} of ${n}`,
    turnYou: 'Your turn',
    turnPartner: 'Your partner’s turn',
    turnBoth: 'You both write',
    /* What the turn is, said from this phone: [phase][whose move]. */
    turnWhat: {
        speak: { me: 'you answer, your partner listens', partner: 'they answer, you listen' },
        reflect: { me: 'say back what you heard', partner: 'they say back what they heard' },
        confirm: { me: 'did they hear you?', partner: 'they check you heard them right' },
    },
    revealExplain: 'You each write privately. Neither of you sees the other’s answer before '
        + 'writing your own, so neither shapes the other.',
    hintLabel: 'For the listener',
    hintLabelReveal: 'While you read',

    you: 'You',
    partner: 'Your partner',
    youAnswered: 'You',
    partnerAnswered: 'Your partner',
    youHeard: 'You heard',
    partnerHeard: 'Your partner heard',
    youSaw: 'What you see in their answer',
    partnerSaw: 'What your partner sees in yours',
    youAdded: 'You added',
    partnerAdded: 'Your partner added',
    youConfirmed: 'You: “That’s it. You heard me.”',
    partnerConfirmed: 'Your partner: “That’s it. You heard me.”',
    youPassed: 'You passed.',
    partnerPassed: 'Your partner passed.',
    youNote: 'You',
    partnerNote: 'Your partner',
    privateUntilReveal: 'Your partner sees this once they have written theirs.',

    stateSending: 'Sending…',
    stateSendingOffline: 'Sending… (waiting for the connection)',
    stateSent: 'Sent',
    stateFailed: (why) => `Not sent: ${why}`,
    failedReasons: {
        not_your_turn: 'it was not your turn any more',
        wrong_step: 'the conversation had moved on',
        room_ended: 'the conversation has ended',
        paused: 'the conversation is paused',
        stage_vote: 'you both choose first whether to go on',
        already_voted: 'you had already chosen',
        paused_by_partner: 'your partner paused; they carry on when they are ready',
        held: 'the next stage is not open yet',
        too_large: 'it is too long',
        invalid_event: 'the server refused it',
        other: 'the server refused it',
    },
    failedRestored: 'What you wrote is back in the box, so nothing is lost.',

    answerLabel: 'Your answer',
    answerPlaceholder: 'Take your time…',
    reflectLabel: 'What I heard…',
    reflectPlaceholder: 'What I heard is…',
    reflectPrompt: 'Say back in your own words what it means to them. Not whether you agree.',
    confirmPrompt: 'Is that what you meant?',
    confirmHeard: 'That’s it',
    notQuite: 'Not quite…',
    addLabel: 'What is missing, or what you meant',
    addPlaceholder: 'What I meant is…',
    revealWriteLabel: 'Your answer (private until you both have written)',
    revealReflectLabel: 'What do you see in their answer?',
    revealReflectPlaceholder: 'What matters to you in this, I think, is…',
    revealReflectPrompt: 'Not whether you agree: what do you see in their answer? A question is '
        + 'welcome too.',
    send: 'Send',
    emptyAnswer: 'Write something first, or pass.',
    draftUnreadable: 'A draft saved in this browser could not be opened, so it was set aside. '
        + 'Nothing you sent is affected.',
    pass: 'Pass',
    passHelp: 'Passing is always fine. No reason needed.',
    passConfirm: 'Leave it there',
    passConfirmHelp: 'Leaving it there is fine too: you move on without saying more.',
    cancel: 'Cancel',

    waitSpeak: 'Your partner is answering. Take a breath and get ready to listen.',
    waitReflect: 'Your partner is saying back what they heard.',
    waitConfirm: 'Your partner is checking whether you heard them right.',
    waitRevealWrite: 'Your partner is still writing. Your answers appear together.',
    waitRevealWriteBoth: 'Write your answer. Your partner cannot see it until you have both '
        + 'written.',
    waitRevealReflect: 'Your partner is reading your answer and writing what they see in it.',
    waitSync: 'One moment…',
    waitSending: 'Sending…',
    waitSendingOffline: 'Waiting for the connection to send what you wrote…',

    revealTitle: 'Your answers, side by side',
    bothSawTitle: 'What you both saw',
    bothSawNote: 'Take a moment with what your partner saw in your answer.',
    bothSawNext: 'On to the next question',
    revealDiffer: 'Where your answers differ, there is nothing to settle. Instead of agreeing, '
        + 'ask: what matters to them in this?',
    revealSame: 'You wrote the same. Notice what that means to each of you.',
    revealBothPassed: 'You both passed on this one. That is fine.',
    revealPartnerPassed: 'Your partner passed on this one.',
    revealYouPassed: 'You passed on this one.',

    pausedTitle: 'Paused',
    pausedBody: 'Take the time you need. Either of you can carry on.',
    pausedByYouTitle: 'You paused',
    pausedByYouBody: 'Take the time you need. Your partner waits; when you are ready, carry on.',
    pausedByPartnerTitle: 'Your partner paused',
    pausedByPartnerBody: 'Take your time too. They carry on when they are ready. Until then you '
        + 'can send them a note.',
    pausedSendNote: 'Send a note',
    turnPaused: 'Paused',
    youPaused: 'You paused.',
    partnerPaused: 'Your partner paused.',
    youResumed: 'You carried on.',
    partnerResumed: 'Your partner carried on.',
    youEnded: 'You ended the conversation.',
    partnerEnded: 'Your partner ended the conversation.',
    heldBody: 'The next stage has not been opened yet.',
    turnVote: 'Before the next stage: you both choose',
    voteTitle: (title) => `Go on to “${title}”?`,
    voteBody: 'Read above what this stage is about. It opens only if you both choose to go '
        + 'on. Staying here is a good choice too.',
    goOn: 'Go on',
    stayHere: 'Stay here',
    stayHereHelp: 'Stay here ends the conversation at this depth, for both of you, kindly. '
        + 'No reason needed.',
    voteWaiting: 'You chose to go on. Your partner is choosing too; the next stage opens '
        + 'when you both want it.',
    pause: 'Pause',
    resume: 'Carry on',
    end: 'End the conversation',
    endConfirmQ: 'End the conversation for both of you? You can still read it afterwards.',
    endConfirm: 'Yes, end it',
    eraseTitle: 'Erase this conversation',
    eraseExplain: 'Erasing deletes it for both of you: every answer and note, from the server '
        + 'and from both browsers. It cannot be undone.',
    erase: 'Erase for both of us…',
    eraseConfirmBoth: 'Are you sure? Your partner loses the conversation too, even if they '
        + 'want to keep it.',
    eraseSure: 'I understand: it is erased for both of us, for good.',
    eraseConfirm: 'Erase for both of us',
    erasing: 'Erasing…',
    controlsLabel: 'Conversation controls',

    noteTitle: 'A note to your partner',
    noteHelp: 'Any time, outside the turns: “tell me more”, “I need a minute”.',
    noteLabel: 'Note',
    noteSend: 'Send note',
    noteQuick: ['Tell me more', 'I need a minute', 'Thank you'],
    notesLabel: 'Notes',

    historyTitle: 'Earlier in this conversation',
    historyEmpty: 'Nothing yet.',

    endedTitle: 'The conversation has ended',
    endedFinished: 'You went through every question together. Thank you for listening to each '
        + 'other.',
    endedStopped: 'One of you ended the conversation. That is always fine.',
    endedStayedTitle: 'You stopped at a good depth',
    endedStayed: 'One of you chose to stay here rather than go deeper tonight. That is a '
        + 'choice, not a failure: you went as far as felt right. Thank you for listening to '
        + 'each other.',
    endedKeep: 'You can still read what you wrote below. When you are done, you can erase it '
        + 'for both of you.',
    endedTranscript: 'Your conversation',

    differTitle: 'Where we differ',
    differLead: 'Side by side: what each of you answered, and what each saw in the other. '
        + 'Nothing to settle; something to understand.',
    differYou: 'You',
    differPartner: 'Your partner',
    differSaw: 'Saw in the other',
    differPassed: 'Passed.',
    differNone: 'Nothing written.',
    keepExplain: 'Save or print the conversation to keep it. The file is made in this browser; '
        + 'the server never sees it. Keep it somewhere private.',
    keepSave: 'Save as a file',
    keepPrint: 'Print',
    keepFileName: (date) => `thou-conversation-${date}.txt`,
    keepTitle: (set) => (set ? `thou: ${set}` : 'thou: our conversation'),
    keepYou: 'You',
    keepPartner: 'Your partner',
    keepAnswered: 'answered',
    keepHeard: 'heard',
    keepAdded: 'added',
    keepPassed: 'passed',
    keepConfirmed: '“That’s it. You heard me.”',

    erasedTitle: 'Erased',
    erasedBody: 'Everything of this conversation is gone from the server and from this browser.',

    /* ---------------------------------------------------------------- announcements */
    announceAnswer: (t) => `Your partner answered: ${t}`,
    announceReflect: (t) => `Your partner heard: ${t}`,
    announceAdd: (t) => `Your partner added: ${t}`,
    announceNote: (t) => `Note from your partner: ${t}`,
    announceConfirm: 'Your partner says you heard them.',
    announcePass: 'Your partner passed.',
    announceReveal: 'Both answers are shown now.',
    announceJoined: 'Your partner has joined.',
    announcePrivate: 'The conversation is private now.',
    announceYourTurn: 'Your turn.',
    announcePaused: 'The conversation is paused.',
    announcePartnerStayed: 'Your partner chose to stay here. The conversation ends at this depth.',
    announcePartnerPaused: 'Your partner paused. Take your time too.',
    announceResumed: 'The conversation carries on.',
    announceEnded: 'The conversation has ended.',
    announceSent: 'Sent.',

    /* "continue on another device" (move-view.js) and this device's conversations (start) */
    move: {
        title: 'Continue on another device',
        explain: 'Opened this in an app’s built-in browser, or want to go on on your phone? '
            + 'Carry your place to another browser: your keys go with it, your partner sees no '
            + 'change.',
        show: 'Show the link for another device',
        warning: 'This link is as private as your conversation: whoever opens it first '
            + 'becomes you in it. Open it only on a device of your own, and do not send it '
            + 'to anyone.',
        qrLabel: 'QR code of the link to continue on another device',
        linkLabel: 'Link to open on your other device',
        once: 'It works once. When your other device opens it, the conversation goes on '
            + 'there and this browser stops and says so. Anything you have not sent yet '
            + 'stays here.',
        hide: 'Hide the link',
        moving: 'Taking your place in the conversation…',
        qrFailed: 'The QR code could not be drawn here; copy the link instead.',
    },
    myRooms: {
        title: 'Your conversations on this device',
        lead: 'Kept only in this browser. Open one to carry on.',
        item: (title, role, date) => `${title || 'A conversation'} · ${role === 'A'
            ? 'you started it' : 'you joined'} · ${date}`,
        open: 'Open',
    },

    /* the indicator for what arrives out of sight; a tap takes the reader there */
    nudge: {
        answer: 'Your partner answered',
        reflect: 'Your partner said what they heard',
        add: 'Your partner added something',
        pass: 'Your partner passed',
        confirm_heard: 'Your partner says you heard them',
        note: 'A note from your partner',
        pause: 'Your partner paused',
        other: 'Something new from your partner',
    },

    /* ---------------------------------------------------------------- research studies */
    research: {
        startNote: (name) => `This conversation is part of the study “${name}”. You will each be `
            + 'asked, inside the conversation, whether you want to take part.',
        title: 'A research study',
        who: (name) => `This conversation is part of the study “${name}”.`,
        fingerprintLabel: 'Study key fingerprint (compare it with the one the researchers '
            + 'published):',
        collectedTitle: 'If you both agree, the researchers receive',
        collected: [
            'your answers, what you heard, your additions',
            'which questions you passed and when you said “That’s it”',
            'how many seconds after the start each step came',
            'how close you feel, on a scale of circles, before and after (if the study asks)',
        ],
        notCollectedTitle: 'They never receive',
        notCollected: [
            'your names, e-mail or IP addresses, your device or browser',
            'the clock time of anything you write',
            'anything your partner writes unless your partner agrees too',
        ],
        how: 'Your browser seals a copy of each of your own steps with the study’s key; the '
            + 'server stores it but cannot read it. Nothing is copied unless both of you agree. '
            + 'At the end you can read your words again and leave any answer out. Until you '
            + 'release them you can withdraw, and the copies are deleted.',
        consent: 'I agree to take part',
        decline: 'I do not want to take part',
        waiting: 'You agreed. Nothing is copied until your partner agrees too.',
        active: 'You both agreed: a sealed copy of each of your own steps goes to the study.',
        declinedMine: 'You chose not to take part. Nothing of this conversation goes to the '
            + 'study.',
        declinedPartner: 'Your partner chose not to take part. Nothing of this conversation '
            + 'goes to the study.',
        withdrawn: 'Taking part was withdrawn. The study’s copies of this conversation were '
            + 'deleted and no new ones are made.',
        withdraw: 'Withdraw from the study',
        keyMismatch: 'The study key the server gave does not match the one in your '
            + 'invitation link. To be safe, nothing of this conversation goes to any study.',
        reviewTitle: 'Before your words go to the study',
        reviewLead: 'These are your own words as the study would receive them. Tick any you '
            + 'want to leave out. Releasing is final; what you leave out is deleted.',
        leaveOut: 'Leave this out',
        release: 'Release to the study',
        releasing: 'Releasing…',
        released: (n, m) => `Released ${n} of your steps to the study`
            + (m ? `; ${m} left out and deleted.` : '.'),
        noWords: 'You wrote nothing the study would receive.',
        stepKinds: { answer: 'Your answer', reflect: 'What you heard', add: 'Your addition' },
        closenessBefore: 'Before you start: how close do you feel to your partner right now?',
        closenessAfter: 'Now, after the conversation: how close do you feel to your partner?',
        closenessHint: 'Choose the picture that best describes your relationship: the left '
            + 'circle is you, the right one your partner.',
        closenessOption: (n) => `${n} of 7: ${['separate circles', 'barely touching',
            'slightly overlapping', 'half overlapping', 'mostly overlapping',
            'largely overlapping', 'almost one circle'][n - 1]}`,
        closenessSave: 'Save',
        failed: 'The study’s copies could not be sent just now; trying again.',
    },
    /* ---------------------------------------------------------------- workshops: the room */
    wsCodeTitle: 'Check that it is really your partner',
    wsCodeLead: 'Your partner sees a code too. Read yours aloud to each other.',
    wsCodeAria: (code) => `Your code: ${String(code ?? '').split('').join(' ')}`,
    wsCodeAsk: 'Is it the same code on both screens?',
    wsCodeYes: 'Yes, the same code',
    wsCodeNo: 'No, it is different',
    wsCodeWhy: 'If the codes are the same, nobody can read along between you. Nothing you '
        + 'write is sent before you say so.',
    wsCodeConfirmed: 'Codes match. The conversation can begin.',
    wsMismatchTitle: 'Stop: the codes are different',
    wsMismatchBody: 'Someone may be listening in between you and your partner. Nothing has '
        + 'been sent, and nothing will be sent from here.',
    wsMismatchAdvice: 'Do not share anything on this screen. Put your hand up and call the '
        + 'facilitator.',
    wsYourCode: 'Your code',
    wsTamperCommitBody: 'Your partner\'s key is not the one announced at the start. Someone may '
        + 'be in between: nothing more is sent from here.',
    wsFromFacilitator: 'From the facilitator',
    wsTimeLeft: 'Time left',
    wsAnnounceNote: (t) => `From the facilitator: ${t}`,
    wsAnnounceTimer: (m) => `The facilitator set a timer: ${m} ${m === 1 ? 'minute' : 'minutes'}.`,
    wsAnnounceReleased: 'The facilitator opened the next stage.',
    wsAnnouncePaused: 'The facilitator paused everyone.',
    wsPausedTitle: 'The facilitator paused everyone',
    wsPausedBody: 'Take a breath and listen to the room. You carry on when the facilitator '
        + 'says so; notes still work.',
    wsHeldTurn: 'Waiting for the next stage',
    wsHeldBody: 'That was the last question of this part. The facilitator opens the next '
        + 'one for everyone soon; until then you can send each other a note.',
    wsPartnerGoneTitle: 'Your partner seems to have left',
    wsPartnerGoneBody: 'Their screen has been gone for a while. You can be paired with someone '
        + 'new, or finish here on your own. What you wrote stays between the two of you.',
    wsFindNew: 'Find a new partner',
    wsFinding: 'Finding a partner…',
    wsFinishAlone: 'Finish on my own',

    /* ---------------------------------------------------------------- workshops: joining */
    joinTitle: 'Join the workshop',
    joinPageTitle: 'Join a workshop · thou',
    joinLead: 'You will be paired with another person in the room. The two of you take turns '
        + 'with a few questions, on your own phones.',
    joinSteps: [
        'Press Join. As soon as someone else joins too, you are a pair.',
        'You both read a short code aloud to check that it is really the two of you.',
        'What you write is end-to-end encrypted: only your partner can read it. The '
            + 'facilitator sees how far each pair is, never what you write.',
        'You can pass any question, and stop at any time.',
    ],
    joinCodeLabel: 'Workshop code',
    joinButton: 'Join',
    joining: 'Joining…',
    joinOtherCode: 'Join with this code',
    waitTitle: 'Welcome! Finding you a partner',
    waitLead: 'Someone will be with you in a moment, as soon as the next person joins.',
    waitCount: (n) => (n <= 1 ? 'You are next in line.'
        : `${n} people are waiting to be paired.`),
    waitKeepOpen: 'Keep this page open; you do not need to do anything.',
    waitReconnecting: 'Reconnecting… you keep your place.',
    pairedTitle: 'Your partner is here',
    pairedLead: 'Opening your conversation…',
    joinErrors: {
        no_such_workshop: { title: 'No workshop with this code',
            body: 'Check the code on the screen at the front and type it again.' },
        workshop_closed: { title: 'Joining is closed for now',
            body: 'The facilitator has closed joining. Ask them to open it, then try again.' },
        workshop_ended: { title: 'This workshop has ended',
            body: 'Thank you for coming. There is nothing more to join here.' },
        workshop_full: { title: 'This workshop is full',
            body: 'Every place is taken. Please tell the facilitator.' },
        rate_limited: { title: 'Too many tries',
            body: 'Wait a moment, then try again.' },
        network: { title: 'No connection',
            body: 'The server cannot be reached. Check your connection and try again.' },
        other: { title: 'Something went wrong',
            body: 'Please try again in a moment.' },
    },
    tryAgain: 'Try again',

    /* ---------------------------------------------------------------- facilitators */
    fTitle: 'Facilitate · thou',
    fLoginTitle: 'Facilitator sign-in',
    fLoginLead: 'Run a workshop: people pair up as they arrive, and you pace the room. You see '
        + 'how far each pair is, never what anyone writes.',
    fName: 'Name',
    fPassword: 'Password',
    fLogin: 'Sign in',
    fLoggingIn: 'Signing in…',
    fLogout: 'Sign out',
    fBadLogin: 'That name and password do not match.',
    fRateLimited: (s) => `Too many attempts. Try again in ${s ?? 'a few'} seconds.`,
    fNetwork: 'The server cannot be reached. Try again.',
    fSignedInAs: (n) => `Signed in as ${n}`,
    fWorkshops: 'Your workshops',
    fNoWorkshops: 'No workshops yet.',
    fNew: 'New workshop',
    fNewTitle: 'Title',
    fNewTitleHelp: 'Participants see it when they join, e.g. “Team day, Thursday”.',
    fNewSet: 'Questions',
    fNewCapacity: 'Largest number of people',
    fCreate: 'Create workshop',
    fCreating: 'Creating…',
    fOpen: 'Open',
    fState: { open: 'Joining open', closed: 'Joining closed', ended: 'Ended' },
    fBack: 'All workshops',
    fProjector: 'Show on the projector',
    fJoinCode: 'Join code',
    fJoinLink: 'Link',
    fCounts: { joined: 'Joined', paired: 'Paired', waiting: 'Waiting', finished: 'Finished' },
    fRoomProgress: 'Progress of the room',
    fReleased: (n, total) => `Stages open: ${n + 1} of ${total}`,
    fReleaseNext: (title) => `Open the next stage: ${title}`,
    fAllReleased: 'Every stage is open.',
    fPauseAll: 'Pause everyone',
    fResumeAll: 'Let everyone carry on',
    fPausedAll: 'Everyone is paused.',
    fBroadcast: 'Note to everyone',
    fBroadcastHelp: 'Up to 280 characters. Shown on every screen until you clear it.',
    fSend: 'Show to everyone',
    fClear: 'Clear the note',
    fCurrentNote: 'Showing now',
    fTimer: 'Countdown',
    fTimerMinutes: 'minutes',
    fTimerStart: 'Start countdown',
    fTimerClear: 'Stop countdown',
    fTimerLeft: 'Left',
    fJoining: 'Joining',
    fCloseJoining: 'Close joining',
    fOpenJoining: 'Open joining',
    fEnd: 'End the workshop…',
    fEndQ: 'End the workshop for everyone? Every conversation ends and nobody can join. '
        + 'This cannot be undone.',
    fEndYes: 'Yes, end it',
    fEndNo: 'Cancel',
    fEnded: 'This workshop has ended.',
    fPairs: 'Pairs',
    fNoPairs: 'No pairs yet.',
    fPair: (n) => `Pair ${n}`,
    fStage: (n, total) => `Stage ${n + 1} of ${total}`,
    fQuestion: (i, total) => `Question ${i} of ${total}`,
    fTurn: { A: 'A’s turn', B: 'B’s turn', none: '—' },
    fStatus: {
        active: 'Talking', paused: 'Paused', held: 'Waiting for the next stage',
        voting: 'Choosing to go on', finished: 'Finished', ended: 'Ended',
    },
    fLastStep: (s) => (s < 60 ? `last step ${s} s ago`
        : `last step ${Math.floor(s / 60)} min ago`),
    fConnected: (role, on) => `${role} ${on ? 'connected' : 'not connected'}`,
    fMoveOn: 'Move on',
    fMoveOnLabel: (n) => `Move pair ${n} on to the next question`,
    fWaiting: 'Waiting to be paired',
    fNoWaiting: 'Nobody is waiting.',
    fWaitingSince: (p, s) => `${p}, waiting ${s < 60 ? `${s} s` : `${Math.floor(s / 60)} min`}`,
    fLeftBehind: 'partner left',
    fAway: 'away',
    fPairThese: 'Pair these two',
    fPairPick: (p) => `Choose ${p} for hand pairing`,
    fLive: 'Live',
    fReconnecting: 'Reconnecting…',
    fNoSession: 'Your session has ended. Please sign in again.',
    fNotYours: 'This workshop belongs to another facilitator.',
    fNoSuchWorkshop: 'There is no such workshop.',
    fActionFailed: 'That did not work. Please try again.',
    fAnnounceResumed: 'Everyone can carry on.',
    fAnnounceReleased: (title) => `Stage “${title}” is open.`,
    fAnnounceNote: 'The note is shown to everyone.',
    fAnnounceNoteCleared: 'The note is cleared.',
    fAnnounceTimer: (m) => `Countdown of ${m} ${m === 1 ? 'minute' : 'minutes'} started.`,
    pTitle: 'Projector · thou',
    pJoinAt: 'Join at',
    pScan: 'Scan to join',
    pQrAlt: (link) => `QR code of ${link}`,
    pCode: 'Code',
};
