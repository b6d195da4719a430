"""Other businesses and places a fan may name instead of us: the lists behind
``bot/nlu/scope.py``'s other-subject rule, kept apart from the rule itself (data, not logic)."""

# Well-known chains, brands and companies a fan may ask about instead of us (normalised
# spelling). Platforms fans use to reach *us* (美团, 饿了么, 大众点评, wechat) are not here.
_GAZETTEER_ZH = (
    "海底捞|星巴克|麦当劳|肯德基|必胜客|瑞幸|喜茶|奈雪|蜜雪冰城|茶颜悦色|霸王茶姬|库迪|太二|西贝|外婆家"
    "|呷哺|全聚德|汉堡王|赛百味|德克士|真功夫|永和大王|鼎泰丰|眉州东坡|小龙坎|大龙燚|蜀大侠|巴奴|陈麻婆"
    "|沃尔玛|家乐福|山姆|开市客|宜家|优衣库|苹果店|苹果专卖店|苹果公司|华为|小米|特斯拉|比亚迪|腾讯"
    "|阿里巴巴|京东|拼多多|盒马|永辉|7-11|711便利店|全家便利店|罗森|漫咖啡|蓝瓶|迪士尼|万达影城|耐克|阿迪"
    "|茅台|可口可乐|百事|达美乐|棒约翰|塔斯汀|华莱士|书亦烧仙草|古茗|沪上阿姨|挪瓦|costa|manner|tims"
    "|巨无霸|星冰乐|苹果手机|雀巢|胶囊咖啡机|顺丰|中通|圆通|菜鸟驿站|京东快递|沙县小吃|兰州拉面|酒店|宾馆|民宿"
    # Chain restaurants, snacks and drinks common in Chinese cities.
    "|老乡鸡|乡村基|大米先生|杨国福|张亮麻辣烫|绝味|周黑鸭|煌上煌|紫燕百味鸡|廖排骨|钟水饺|龙抄手|赖汤圆"
    "|冒椒火辣|谭鸭血|蜀九香|朱光玉|电台巷|贤合庄|刘一手|德庄|秦妈|小肥羊|味千|吉野家|食其家|萨莉亚|九毛九"
    "|和府捞面|遇见小面|马记永|陈香贵|费大厨|农耕记|绿茶餐厅|正新鸡排|一点点|茶百道|益禾堂|七分甜|乐乐茶"
    "|鹿角巷|幸运咖|皮爷咖啡|阿拉比卡|蓝瓶咖啡|星巴克臻选|塔可贝尔|赛百味|棒约翰|汉堡王|必胜客|探鱼|怂火锅"
    # Malls, department stores, supermarkets, banks, telecoms and other shops.
    "|太古里|国金中心|万象城|来福士|银泰|伊藤洋华堂|伊藤|王府井|大悦城|爱琴海|龙湖天街|万达广场|凯德|环球中心"
    "|苏宁|国美|屈臣氏|名创优品|无印良品|盒马鲜生|物美|大润发|麦德龙|奥特莱斯|便利蜂|美宜佳|红旗连锁|舞东风"
    "|中国银行|工商银行|建设银行|农业银行|招商银行|交通银行|中国移动|中国联通|中国电信|携程|12306|滴滴客服"
    "|华为手机|小米手机|网易|百度|字节跳动|中石化|中石油|加油站|电影院|万达影城|网吧"
    # Sights, stations, hospitals and universities of Chengdu and Shanghai.
    "|宽窄巷子|锦里|武侯祠|杜甫草堂|文殊院|大熊猫基地|熊猫基地|青城山|都江堰|九眼桥|东郊记忆|天府广场|欢乐谷"
    "|金沙遗址|人民公园|双流机场|天府机场|成都东站|成都南站|火车北站|成都站|四川大学|川大|电子科大|西南交大"
    "|华西医院|省医院|外滩|新天地|南京路步行街|陆家嘴|东方明珠|豫园|田子坊|静安寺|浦东机场|虹桥机场|虹桥火车站"
    "|上海站|上海南站|上海中心|环球港|前滩太古里|迪士尼乐园"
)
_GAZETTEER_EN = (
    "starbucks|mcdonalds|mcdonald|mcds|kfc|burger king|pizza hut|dominos|luckin|costa|tim hortons"
    "|dunkin|dunkin donuts|peets|blue bottle|haidilao|hai di lao|din tai fung|heytea|apple store"
    "|ikea|costco|walmart|tesla|amazon|google|microsoft|nvidia|uniqlo|zara|7 eleven|family mart"
    "|familymart|chipotle|shake shack|five guys|wendys|taco bell|panda express|nandos|wagamama"
    "|pret|pret a manger|whole foods|trader joes|disneyland|nike|adidas|coca cola|pepsi|manner"
    "|arabica|tims|bitcoin|ethereum|dogecoin|netflix|spotify|uber|airbnb|big mac|whopper"
    "|frappuccino|iphone|ipad|macbook|nespresso|delonghi|breville|playstation|ps5|xbox|nintendo"
    "|new york times|nyt|wall street journal|the economist|youtube premium|disney plus"
    # Coffee, food and retail chains of English-speaking cities and of Shanghai.
    "|krispy kreme|pizza express|greggs|caffe nero|cafe nero|itsu|yo sushi|dishoom|honest burgers"
    "|gails|le pain quotidien|joe and the juice|blank street|la colombe|intelligentsia|stumptown"
    "|philz"
    "|coffee bean|caribou coffee|dutch bros|panera|chick fil a|chickfila|popeyes|in n out|jollibee"
    "|sweetgreen|potbelly|jimmy johns|jersey mikes|arbys|dairy queen|ihop|dennys|applebees"
    "|olive garden"
    "|cheesecake factory|red lobster|outback|texas roadhouse|buffalo wild wings|hooters"
    "|subway sandwich"
    "|target|aldi|lidl|tesco|sainsburys|waitrose|marks and spencer|asda|morrisons|woolworths|coles"
    "|kroger|safeway|publix|wegmans|cvs|walgreens|best buy|home depot|lowes|primark|sephora"
    "|lululemon"
    "|muji|seesaw|m stand|peets coffee|arabica coffee|luckin coffee|cotti|cotti coffee|tims china"
    "|hsbc"
    "|bank of china|citibank|barclays|chase bank|wells fargo|the bund|bund|xintiandi|jing an temple"
    "|jingan temple|yu garden|yuyuan|oriental pearl|shanghai tower|pudong airport|hongqiao"
    "|nanjing road"
    "|tianzifang|iapm|ifc mall|reel mall|k11|taikoo li|raffles city|west bund|lujiazui|times square"
    "|central park|eiffel tower|big ben|louvre|the met|moma|heathrow|jfk|chengdu east station"
    "|kuanzhai alley|jinli|panda base|chunxi road|ifs"
)
