"""Everyday names of the 1000 ImageNet-1k classes, in class-index order (tabby → cat).

Generated from WordNet 3.0 hypernyms and ``omnibind/data/sources/basic_level.txt`` by
``python scripts/make_imagenet_common_names.py`` (``omnibind.data.experts.common_names_module``);
do not edit by hand. Shipped so the image-labels expert needs no WordNet on users' machines.
"""

COMMON_NAMES: tuple[str, ...] = (
    "fish",  # 0
    "goldfish",  # 1
    "shark",  # 2
    "shark",  # 3
    "shark",  # 4
    "ray",  # 5
    "ray",  # 6
    "rooster",  # 7
    "hen",  # 8
    "ostrich",  # 9
    "bird",  # 10
    "bird",  # 11
    "bird",  # 12
    "bird",  # 13
    "bird",  # 14
    "bird",  # 15
    "bird",  # 16
    "bird",  # 17
    "bird",  # 18
    "bird",  # 19
    "bird",  # 20
    "hawk",  # 21
    "eagle",  # 22
    "vulture",  # 23
    "owl",  # 24
    "salamander",  # 25
    "newt",  # 26
    "newt",  # 27
    "salamander",  # 28
    "salamander",  # 29
    "frog",  # 30
    "frog",  # 31
    "frog",  # 32
    "turtle",  # 33
    "turtle",  # 34
    "turtle",  # 35
    "turtle",  # 36
    "turtle",  # 37
    "lizard",  # 38
    "lizard",  # 39
    "lizard",  # 40
    "lizard",  # 41
    "lizard",  # 42
    "lizard",  # 43
    "lizard",  # 44
    "lizard",  # 45
    "lizard",  # 46
    "lizard",  # 47
    "lizard",  # 48
    "crocodile",  # 49
    "alligator",  # 50
    "dinosaur",  # 51
    "snake",  # 52
    "snake",  # 53
    "snake",  # 54
    "snake",  # 55
    "snake",  # 56
    "snake",  # 57
    "snake",  # 58
    "snake",  # 59
    "snake",  # 60
    "snake",  # 61
    "snake",  # 62
    "snake",  # 63
    "snake",  # 64
    "snake",  # 65
    "snake",  # 66
    "snake",  # 67
    "snake",  # 68
    "trilobite",  # 69
    "harvestman",  # 70
    "scorpion",  # 71
    "spider",  # 72
    "spider",  # 73
    "spider",  # 74
    "spider",  # 75
    "spider",  # 76
    "spider",  # 77
    "tick",  # 78
    "centipede",  # 79
    "bird",  # 80
    "bird",  # 81
    "bird",  # 82
    "bird",  # 83
    "peacock",  # 84
    "bird",  # 85
    "bird",  # 86
    "parrot",  # 87
    "parrot",  # 88
    "parrot",  # 89
    "parrot",  # 90
    "bird",  # 91
    "bird",  # 92
    "bird",  # 93
    "hummingbird",  # 94
    "bird",  # 95
    "bird",  # 96
    "duck",  # 97
    "duck",  # 98
    "goose",  # 99
    "swan",  # 100
    "tusker",  # 101
    "echidna",  # 102
    "platypus",  # 103
    "kangaroo",  # 104
    "koala",  # 105
    "wombat",  # 106
    "jellyfish",  # 107
    "sea anemone",  # 108
    "coral",  # 109
    "worm",  # 110
    "worm",  # 111
    "conch",  # 112
    "snail",  # 113
    "slug",  # 114
    "sea slug",  # 115
    "chiton",  # 116
    "chambered nautilus",  # 117
    "crab",  # 118
    "crab",  # 119
    "crab",  # 120
    "crab",  # 121
    "lobster",  # 122
    "lobster",  # 123
    "crayfish",  # 124
    "hermit crab",  # 125
    "isopod",  # 126
    "stork",  # 127
    "stork",  # 128
    "bird",  # 129
    "flamingo",  # 130
    "heron",  # 131
    "heron",  # 132
    "heron",  # 133
    "bird",  # 134
    "bird",  # 135
    "bird",  # 136
    "bird",  # 137
    "bird",  # 138
    "bird",  # 139
    "bird",  # 140
    "bird",  # 141
    "bird",  # 142
    "bird",  # 143
    "pelican",  # 144
    "penguin",  # 145
    "bird",  # 146
    "whale",  # 147
    "whale",  # 148
    "dugong",  # 149
    "sea lion",  # 150
    "dog",  # 151
    "dog",  # 152
    "dog",  # 153
    "dog",  # 154
    "dog",  # 155
    "dog",  # 156
    "dog",  # 157
    "dog",  # 158
    "dog",  # 159
    "dog",  # 160
    "dog",  # 161
    "dog",  # 162
    "dog",  # 163
    "dog",  # 164
    "dog",  # 165
    "dog",  # 166
    "dog",  # 167
    "dog",  # 168
    "dog",  # 169
    "dog",  # 170
    "dog",  # 171
    "dog",  # 172
    "dog",  # 173
    "dog",  # 174
    "dog",  # 175
    "dog",  # 176
    "dog",  # 177
    "dog",  # 178
    "dog",  # 179
    "dog",  # 180
    "dog",  # 181
    "dog",  # 182
    "dog",  # 183
    "dog",  # 184
    "dog",  # 185
    "dog",  # 186
    "dog",  # 187
    "dog",  # 188
    "dog",  # 189
    "dog",  # 190
    "dog",  # 191
    "dog",  # 192
    "dog",  # 193
    "dog",  # 194
    "dog",  # 195
    "dog",  # 196
    "dog",  # 197
    "dog",  # 198
    "dog",  # 199
    "dog",  # 200
    "dog",  # 201
    "dog",  # 202
    "dog",  # 203
    "dog",  # 204
    "dog",  # 205
    "dog",  # 206
    "dog",  # 207
    "dog",  # 208
    "dog",  # 209
    "dog",  # 210
    "dog",  # 211
    "dog",  # 212
    "dog",  # 213
    "dog",  # 214
    "dog",  # 215
    "dog",  # 216
    "dog",  # 217
    "dog",  # 218
    "dog",  # 219
    "dog",  # 220
    "dog",  # 221
    "dog",  # 222
    "dog",  # 223
    "dog",  # 224
    "dog",  # 225
    "dog",  # 226
    "dog",  # 227
    "dog",  # 228
    "dog",  # 229
    "dog",  # 230
    "dog",  # 231
    "dog",  # 232
    "dog",  # 233
    "dog",  # 234
    "dog",  # 235
    "dog",  # 236
    "dog",  # 237
    "dog",  # 238
    "dog",  # 239
    "dog",  # 240
    "dog",  # 241
    "dog",  # 242
    "dog",  # 243
    "dog",  # 244
    "dog",  # 245
    "dog",  # 246
    "dog",  # 247
    "dog",  # 248
    "dog",  # 249
    "dog",  # 250
    "dog",  # 251
    "dog",  # 252
    "dog",  # 253
    "dog",  # 254
    "dog",  # 255
    "dog",  # 256
    "dog",  # 257
    "dog",  # 258
    "dog",  # 259
    "dog",  # 260
    "dog",  # 261
    "dog",  # 262
    "dog",  # 263
    "dog",  # 264
    "dog",  # 265
    "dog",  # 266
    "dog",  # 267
    "dog",  # 268
    "wolf",  # 269
    "wolf",  # 270
    "wolf",  # 271
    "wolf",  # 272
    "dog",  # 273
    "dog",  # 274
    "dog",  # 275
    "hyena",  # 276
    "fox",  # 277
    "fox",  # 278
    "fox",  # 279
    "fox",  # 280
    "cat",  # 281
    "cat",  # 282
    "cat",  # 283
    "cat",  # 284
    "cat",  # 285
    "cougar",  # 286
    "lynx",  # 287
    "leopard",  # 288
    "leopard",  # 289
    "jaguar",  # 290
    "lion",  # 291
    "tiger",  # 292
    "cheetah",  # 293
    "bear",  # 294
    "bear",  # 295
    "bear",  # 296
    "bear",  # 297
    "mongoose",  # 298
    "meerkat",  # 299
    "beetle",  # 300
    "ladybird",  # 301
    "beetle",  # 302
    "beetle",  # 303
    "beetle",  # 304
    "beetle",  # 305
    "beetle",  # 306
    "beetle",  # 307
    "fly",  # 308
    "bee",  # 309
    "ant",  # 310
    "grasshopper",  # 311
    "cricket",  # 312
    "insect",  # 313
    "cockroach",  # 314
    "insect",  # 315
    "insect",  # 316
    "insect",  # 317
    "insect",  # 318
    "dragonfly",  # 319
    "insect",  # 320
    "butterfly",  # 321
    "butterfly",  # 322
    "butterfly",  # 323
    "butterfly",  # 324
    "butterfly",  # 325
    "butterfly",  # 326
    "starfish",  # 327
    "sea urchin",  # 328
    "sea cucumber",  # 329
    "rabbit",  # 330
    "hare",  # 331
    "rabbit",  # 332
    "hamster",  # 333
    "porcupine",  # 334
    "squirrel",  # 335
    "marmot",  # 336
    "beaver",  # 337
    "guinea pig",  # 338
    "horse",  # 339
    "zebra",  # 340
    "pig",  # 341
    "boar",  # 342
    "pig",  # 343
    "hippopotamus",  # 344
    "ox",  # 345
    "buffalo",  # 346
    "bison",  # 347
    "sheep",  # 348
    "bighorn",  # 349
    "goat",  # 350
    "antelope",  # 351
    "antelope",  # 352
    "antelope",  # 353
    "camel",  # 354
    "llama",  # 355
    "weasel",  # 356
    "mink",  # 357
    "polecat",  # 358
    "black-footed ferret",  # 359
    "otter",  # 360
    "skunk",  # 361
    "badger",  # 362
    "armadillo",  # 363
    "sloth",  # 364
    "orangutan",  # 365
    "gorilla",  # 366
    "chimpanzee",  # 367
    "ape",  # 368
    "ape",  # 369
    "monkey",  # 370
    "monkey",  # 371
    "monkey",  # 372
    "monkey",  # 373
    "monkey",  # 374
    "monkey",  # 375
    "monkey",  # 376
    "monkey",  # 377
    "monkey",  # 378
    "monkey",  # 379
    "monkey",  # 380
    "monkey",  # 381
    "monkey",  # 382
    "lemur",  # 383
    "lemur",  # 384
    "elephant",  # 385
    "elephant",  # 386
    "lesser panda",  # 387
    "panda",  # 388
    "fish",  # 389
    "eel",  # 390
    "fish",  # 391
    "fish",  # 392
    "fish",  # 393
    "fish",  # 394
    "fish",  # 395
    "fish",  # 396
    "fish",  # 397
    "abacus",  # 398
    "abaya",  # 399
    "academic gown",  # 400
    "accordion",  # 401
    "guitar",  # 402
    "ship",  # 403
    "aeroplane",  # 404
    "airship",  # 405
    "altar",  # 406
    "car",  # 407
    "amphibian",  # 408
    "clock",  # 409
    "apiary",  # 410
    "apron",  # 411
    "ashcan",  # 412
    "gun",  # 413
    "backpack",  # 414
    "shop",  # 415
    "balance beam",  # 416
    "balloon",  # 417
    "pen",  # 418
    "Band Aid",  # 419
    "banjo",  # 420
    "bannister",  # 421
    "barbell",  # 422
    "chair",  # 423
    "shop",  # 424
    "barn",  # 425
    "barometer",  # 426
    "barrel",  # 427
    "barrow",  # 428
    "ball",  # 429
    "ball",  # 430
    "bassinet",  # 431
    "bassoon",  # 432
    "cap",  # 433
    "towel",  # 434
    "bathtub",  # 435
    "car",  # 436
    "lighthouse",  # 437
    "beaker",  # 438
    "hat",  # 439
    "bottle",  # 440
    "glass",  # 441
    "bell cote",  # 442
    "bib",  # 443
    "bicycle",  # 444
    "swimsuit",  # 445
    "binder",  # 446
    "binoculars",  # 447
    "birdhouse",  # 448
    "boathouse",  # 449
    "sled",  # 450
    "tie",  # 451
    "hat",  # 452
    "bookcase",  # 453
    "shop",  # 454
    "bottlecap",  # 455
    "bow",  # 456
    "tie",  # 457
    "brass",  # 458
    "brassiere",  # 459
    "breakwater",  # 460
    "breastplate",  # 461
    "broom",  # 462
    "bucket",  # 463
    "buckle",  # 464
    "armour",  # 465
    "train",  # 466
    "shop",  # 467
    "car",  # 468
    "pot",  # 469
    "candle",  # 470
    "gun",  # 471
    "canoe",  # 472
    "can opener",  # 473
    "sweater",  # 474
    "mirror",  # 475
    "carousel",  # 476
    "carpenter's kit",  # 477
    "box",  # 478
    "wheel",  # 479
    "cash machine",  # 480
    "cassette",  # 481
    "cassette player",  # 482
    "castle",  # 483
    "boat",  # 484
    "CD player",  # 485
    "cello",  # 486
    "phone",  # 487
    "chain",  # 488
    "fence",  # 489
    "armour",  # 490
    "chain saw",  # 491
    "box",  # 492
    "chiffonier",  # 493
    "chime",  # 494
    "china cabinet",  # 495
    "Christmas stocking",  # 496
    "church",  # 497
    "cinema",  # 498
    "knife",  # 499
    "cliff dwelling",  # 500
    "cloak",  # 501
    "clog",  # 502
    "cocktail shaker",  # 503
    "mug",  # 504
    "pot",  # 505
    "coil",  # 506
    "lock",  # 507
    "keyboard",  # 508
    "shop",  # 509
    "ship",  # 510
    "car",  # 511
    "corkscrew",  # 512
    "trumpet",  # 513
    "boot",  # 514
    "hat",  # 515
    "cradle",  # 516
    "crane",  # 517
    "helmet",  # 518
    "box",  # 519
    "crib",  # 520
    "Crock Pot",  # 521
    "ball",  # 522
    "crutch",  # 523
    "armour",  # 524
    "dam",  # 525
    "desk",  # 526
    "computer",  # 527
    "phone",  # 528
    "diaper",  # 529
    "clock",  # 530
    "watch",  # 531
    "dining table",  # 532
    "dishrag",  # 533
    "dishwasher",  # 534
    "disk brake",  # 535
    "dock",  # 536
    "sled",  # 537
    "roof",  # 538
    "doormat",  # 539
    "drilling platform",  # 540
    "drum",  # 541
    "drumstick",  # 542
    "dumbbell",  # 543
    "oven",  # 544
    "fan",  # 545
    "guitar",  # 546
    "train",  # 547
    "entertainment center",  # 548
    "envelope",  # 549
    "espresso maker",  # 550
    "face powder",  # 551
    "scarf",  # 552
    "file",  # 553
    "boat",  # 554
    "truck",  # 555
    "fire screen",  # 556
    "flagpole",  # 557
    "flute",  # 558
    "chair",  # 559
    "helmet",  # 560
    "forklift",  # 561
    "fountain",  # 562
    "pen",  # 563
    "bed",  # 564
    "train",  # 565
    "French horn",  # 566
    "pan",  # 567
    "coat",  # 568
    "truck",  # 569
    "gasmask",  # 570
    "gas pump",  # 571
    "glass",  # 572
    "go-kart",  # 573
    "ball",  # 574
    "golfcart",  # 575
    "boat",  # 576
    "gong",  # 577
    "dress",  # 578
    "piano",  # 579
    "greenhouse",  # 580
    "grille",  # 581
    "grocery store",  # 582
    "guillotine",  # 583
    "hair slide",  # 584
    "hair spray",  # 585
    "half track",  # 586
    "hammer",  # 587
    "basket",  # 588
    "hand blower",  # 589
    "computer",  # 590
    "handkerchief",  # 591
    "hard disc",  # 592
    "harmonica",  # 593
    "harp",  # 594
    "harvester",  # 595
    "axe",  # 596
    "holster",  # 597
    "home theater",  # 598
    "honeycomb",  # 599
    "hook",  # 600
    "skirt",  # 601
    "horizontal bar",  # 602
    "cart",  # 603
    "hourglass",  # 604
    "iPod",  # 605
    "iron",  # 606
    "lamp",  # 607
    "jeans",  # 608
    "car",  # 609
    "t-shirt",  # 610
    "puzzle",  # 611
    "cart",  # 612
    "joystick",  # 613
    "kimono",  # 614
    "knee pad",  # 615
    "knot",  # 616
    "coat",  # 617
    "ladle",  # 618
    "lampshade",  # 619
    "laptop",  # 620
    "lawn mower",  # 621
    "lens cap",  # 622
    "knife",  # 623
    "library",  # 624
    "boat",  # 625
    "lighter",  # 626
    "car",  # 627
    "ship",  # 628
    "lipstick",  # 629
    "shoe",  # 630
    "lotion",  # 631
    "loudspeaker",  # 632
    "loupe",  # 633
    "lumbermill",  # 634
    "magnetic compass",  # 635
    "bag",  # 636
    "box",  # 637
    "maillot",  # 638
    "swimsuit",  # 639
    "manhole cover",  # 640
    "maraca",  # 641
    "marimba",  # 642
    "mask",  # 643
    "matchstick",  # 644
    "maypole",  # 645
    "maze",  # 646
    "measuring cup",  # 647
    "medicine chest",  # 648
    "megalith",  # 649
    "microphone",  # 650
    "microwave",  # 651
    "military uniform",  # 652
    "milk can",  # 653
    "bus",  # 654
    "skirt",  # 655
    "car",  # 656
    "rocket",  # 657
    "glove",  # 658
    "bowl",  # 659
    "mobile home",  # 660
    "car",  # 661
    "modem",  # 662
    "house",  # 663
    "monitor",  # 664
    "motorcycle",  # 665
    "mortar",  # 666
    "cap",  # 667
    "mosque",  # 668
    "mosquito net",  # 669
    "scooter",  # 670
    "bicycle",  # 671
    "tent",  # 672
    "mouse",  # 673
    "mousetrap",  # 674
    "truck",  # 675
    "muzzle",  # 676
    "nail",  # 677
    "neck brace",  # 678
    "necklace",  # 679
    "nipple",  # 680
    "computer",  # 681
    "obelisk",  # 682
    "oboe",  # 683
    "ocarina",  # 684
    "odometer",  # 685
    "oil filter",  # 686
    "organ",  # 687
    "oscilloscope",  # 688
    "skirt",  # 689
    "cart",  # 690
    "oxygen mask",  # 691
    "packet",  # 692
    "paddle",  # 693
    "wheel",  # 694
    "lock",  # 695
    "brush",  # 696
    "pajama",  # 697
    "house",  # 698
    "panpipe",  # 699
    "towel",  # 700
    "parachute",  # 701
    "parallel bars",  # 702
    "bench",  # 703
    "parking meter",  # 704
    "passenger car",  # 705
    "patio",  # 706
    "phone",  # 707
    "pedestal",  # 708
    "box",  # 709
    "pencil sharpener",  # 710
    "perfume",  # 711
    "Petri dish",  # 712
    "photocopier",  # 713
    "pick",  # 714
    "helmet",  # 715
    "fence",  # 716
    "truck",  # 717
    "pier",  # 718
    "piggy bank",  # 719
    "bottle",  # 720
    "pillow",  # 721
    "ball",  # 722
    "wheel",  # 723
    "ship",  # 724
    "pitcher",  # 725
    "plane",  # 726
    "planetarium",  # 727
    "bag",  # 728
    "plate rack",  # 729
    "plow",  # 730
    "plunger",  # 731
    "camera",  # 732
    "pole",  # 733
    "truck",  # 734
    "poncho",  # 735
    "table",  # 736
    "bottle",  # 737
    "pot",  # 738
    "wheel",  # 739
    "drill",  # 740
    "rug",  # 741
    "printer",  # 742
    "prison",  # 743
    "projectile",  # 744
    "projector",  # 745
    "puck",  # 746
    "ball",  # 747
    "bag",  # 748
    "pen",  # 749
    "quilt",  # 750
    "car",  # 751
    "racket",  # 752
    "radiator",  # 753
    "radio",  # 754
    "radio telescope",  # 755
    "rain barrel",  # 756
    "recreational vehicle",  # 757
    "reel",  # 758
    "camera",  # 759
    "refrigerator",  # 760
    "remote control",  # 761
    "restaurant",  # 762
    "gun",  # 763
    "gun",  # 764
    "chair",  # 765
    "oven",  # 766
    "rubber eraser",  # 767
    "ball",  # 768
    "ruler",  # 769
    "shoe",  # 770
    "box",  # 771
    "safety pin",  # 772
    "saltshaker",  # 773
    "shoe",  # 774
    "skirt",  # 775
    "saxophone",  # 776
    "scabbard",  # 777
    "scale",  # 778
    "bus",  # 779
    "schooner",  # 780
    "scoreboard",  # 781
    "screen",  # 782
    "screw",  # 783
    "screwdriver",  # 784
    "belt",  # 785
    "sewing machine",  # 786
    "armour",  # 787
    "shop",  # 788
    "shoji",  # 789
    "basket",  # 790
    "shopping cart",  # 791
    "shovel",  # 792
    "cap",  # 793
    "curtain",  # 794
    "ski",  # 795
    "ski mask",  # 796
    "bag",  # 797
    "computer",  # 798
    "door",  # 799
    "slot",  # 800
    "snorkel",  # 801
    "snowmobile",  # 802
    "snowplow",  # 803
    "soap dispenser",  # 804
    "ball",  # 805
    "sock",  # 806
    "solar dish",  # 807
    "hat",  # 808
    "bowl",  # 809
    "space bar",  # 810
    "space heater",  # 811
    "space shuttle",  # 812
    "spatula",  # 813
    "boat",  # 814
    "spider web",  # 815
    "spindle",  # 816
    "car",  # 817
    "lamp",  # 818
    "stage",  # 819
    "train",  # 820
    "bridge",  # 821
    "steel drum",  # 822
    "stethoscope",  # 823
    "scarf",  # 824
    "fence",  # 825
    "stopwatch",  # 826
    "stove",  # 827
    "strainer",  # 828
    "tram",  # 829
    "stretcher",  # 830
    "sofa",  # 831
    "stupa",  # 832
    "submarine",  # 833
    "suit",  # 834
    "sundial",  # 835
    "sunglass",  # 836
    "sunglasses",  # 837
    "sunscreen",  # 838
    "bridge",  # 839
    "mop",  # 840
    "sweater",  # 841
    "swimsuit",  # 842
    "swing",  # 843
    "switch",  # 844
    "syringe",  # 845
    "lamp",  # 846
    "tank",  # 847
    "tape player",  # 848
    "teapot",  # 849
    "teddy bear",  # 850
    "television",  # 851
    "ball",  # 852
    "roof",  # 853
    "curtain",  # 854
    "thimble",  # 855
    "thresher",  # 856
    "chair",  # 857
    "roof",  # 858
    "toaster",  # 859
    "shop",  # 860
    "toilet seat",  # 861
    "torch",  # 862
    "totem pole",  # 863
    "truck",  # 864
    "shop",  # 865
    "tractor",  # 866
    "truck",  # 867
    "tray",  # 868
    "coat",  # 869
    "tricycle",  # 870
    "boat",  # 871
    "tripod",  # 872
    "triumphal arch",  # 873
    "bus",  # 874
    "trombone",  # 875
    "tub",  # 876
    "turnstile",  # 877
    "keyboard",  # 878
    "umbrella",  # 879
    "unicycle",  # 880
    "piano",  # 881
    "vacuum",  # 882
    "vase",  # 883
    "roof",  # 884
    "velvet",  # 885
    "vending machine",  # 886
    "vestment",  # 887
    "bridge",  # 888
    "violin",  # 889
    "ball",  # 890
    "waffle iron",  # 891
    "clock",  # 892
    "wallet",  # 893
    "wardrobe",  # 894
    "aeroplane",  # 895
    "washbasin",  # 896
    "washing machine",  # 897
    "bottle",  # 898
    "bottle",  # 899
    "water tower",  # 900
    "bottle",  # 901
    "whistle",  # 902
    "wig",  # 903
    "window screen",  # 904
    "window shade",  # 905
    "tie",  # 906
    "bottle",  # 907
    "wing",  # 908
    "pan",  # 909
    "spoon",  # 910
    "wool",  # 911
    "fence",  # 912
    "ship",  # 913
    "boat",  # 914
    "yurt",  # 915
    "computer",  # 916
    "comic book",  # 917
    "puzzle",  # 918
    "street sign",  # 919
    "traffic light",  # 920
    "book jacket",  # 921
    "menu",  # 922
    "plate",  # 923
    "guacamole",  # 924
    "soup",  # 925
    "hot pot",  # 926
    "trifle",  # 927
    "ice cream",  # 928
    "ice lolly",  # 929
    "bread",  # 930
    "bagel",  # 931
    "pretzel",  # 932
    "hamburger",  # 933
    "hotdog",  # 934
    "potato",  # 935
    "cabbage",  # 936
    "broccoli",  # 937
    "cauliflower",  # 938
    "zucchini",  # 939
    "squash",  # 940
    "squash",  # 941
    "squash",  # 942
    "cucumber",  # 943
    "artichoke",  # 944
    "pepper",  # 945
    "cardoon",  # 946
    "mushroom",  # 947
    "apple",  # 948
    "strawberry",  # 949
    "orange",  # 950
    "lemon",  # 951
    "fig",  # 952
    "pineapple",  # 953
    "banana",  # 954
    "jackfruit",  # 955
    "custard apple",  # 956
    "pomegranate",  # 957
    "hay",  # 958
    "carbonara",  # 959
    "chocolate sauce",  # 960
    "dough",  # 961
    "bread",  # 962
    "pizza",  # 963
    "potpie",  # 964
    "burrito",  # 965
    "wine",  # 966
    "coffee",  # 967
    "cup",  # 968
    "eggnog",  # 969
    "mountain",  # 970
    "bubble",  # 971
    "cliff",  # 972
    "coral reef",  # 973
    "geyser",  # 974
    "lakeside",  # 975
    "promontory",  # 976
    "sandbar",  # 977
    "beach",  # 978
    "valley",  # 979
    "volcano",  # 980
    "person",  # 981
    "person",  # 982
    "person",  # 983
    "rapeseed",  # 984
    "flower",  # 985
    "flower",  # 986
    "corn",  # 987
    "acorn",  # 988
    "hip",  # 989
    "buckeye",  # 990
    "mushroom",  # 991
    "mushroom",  # 992
    "mushroom",  # 993
    "mushroom",  # 994
    "mushroom",  # 995
    "mushroom",  # 996
    "mushroom",  # 997
    "corn",  # 998
    "toilet paper",  # 999
)
